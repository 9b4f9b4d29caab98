/**
 * A bad request the user can fix (a flag, a config file, a missing setup, incompatible clusters):
 * meshctl reports it as one line and exits with code 2. The lab's and the mesh operations' input
 * errors extend it, so meshctl knows them without importing the modules that throw them.
 */
export class UsageError extends Error {}
