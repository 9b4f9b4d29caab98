/** A bad request to a mesh operation (flag, missing setup, incompatible clusters): reported as one line, exit code 2. */
export class MeshUsageError extends Error {}
