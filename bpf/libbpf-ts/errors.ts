import { constants } from "node:os";

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value as number, name]),
);

export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `errno ${Math.abs(errno)}`;
}

/** A failed libbpf or bpf() call: the operation, the errno (positive) and its name, and libbpf's log. */
export class BpfError extends Error {
  readonly errno: number;
  readonly code: string;

  constructor(
    readonly operation: string,
    errno: number,
    /** libbpf's messages during the call, including the verifier log when a program was rejected. */
    readonly log: string = "",
  ) {
    const positive = Math.abs(errno);
    const tail = log.trim() ? `\n${log.trim()}` : "";
    super(`${operation}: ${errnoName(positive)} (${positive})${tail}`);
    this.name = "BpfError";
    this.errno = positive;
    this.code = errnoName(positive);
  }
}

/** libbpf >= 1.0 returns -errno from its low-level calls; turn that into an exception. */
export function check(result: number, operation: string, log?: string): number {
  if (result < 0) throw new BpfError(operation, -result, log);
  return result;
}

export function isErrno(error: unknown, name: string): boolean {
  return error instanceof BpfError && error.code === name;
}
