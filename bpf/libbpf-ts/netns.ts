import { closeSync, openSync } from "node:fs";
import { BpfError } from "./errors.js";
import { lastErrno, native } from "./native.js";

const CLONE_NEWNET = 0x40000000;

/**
 * Runs fn with the calling thread in another network namespace (e.g. to resolve and attach to an
 * interface that lives there), then moves back. Only for synchronous work: setns affects this
 * thread alone, and async I/O started inside fn would run later, elsewhere.
 */
export function inNetworkNamespace<T>(netnsPath: string, fn: () => T): T {
  const original = openSync("/proc/thread-self/ns/net", "r");
  try {
    const target = openSync(netnsPath, "r");
    try {
      enter(target, `setns(${netnsPath})`);
    } finally {
      closeSync(target);
    }
    try {
      return fn();
    } finally {
      enter(original, "setns(back)");
    }
  } finally {
    closeSync(original);
  }
}

function enter(fd: number, operation: string): void {
  if (native.setns(fd, CLONE_NEWNET) !== 0) throw new BpfError(operation, lastErrno());
}
