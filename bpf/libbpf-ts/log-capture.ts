/**
 * Captures libbpf's print output (libbpf_set_print) so errors can carry it, e.g. the verifier
 * log of a rejected program. The callback runs synchronously inside libbpf calls on this thread.
 */
import { koffi, native, printCallbackType, viewNative } from "./native.js";

const LIBBPF_DEBUG = 2;
const VA_LIST_SIZE = 24; // x86_64/aarch64 SysV va_list: copying it is what va_copy does
let buffer = Buffer.alloc(64 * 1024);
let capturing: string[] | undefined;
let installed = false;

function printCallback(level: number, format: unknown, args: unknown): number {
  if (capturing === undefined || level >= LIBBPF_DEBUG) return 0;
  const argsCopy = viewNative(args, VA_LIST_SIZE);
  let length = native.vsnprintf(buffer, buffer.length, format, Buffer.from(argsCopy));
  if (length >= buffer.length) {
    buffer = Buffer.alloc(length + 1);
    length = native.vsnprintf(buffer, buffer.length, format, Buffer.from(argsCopy));
  }
  if (length > 0) capturing.push(buffer.toString("utf8", 0, length));
  return 0;
}

function install(): void {
  if (installed) return;
  const pointer = koffi.register(printCallback, koffi.pointer(printCallbackType));
  native.libbpf_set_print(pointer);
  installed = true;
}

/**
 * Runs fn while capturing what libbpf prints (warnings and info); fn gets a function returning the
 * text captured so far, to put into the error it throws.
 */
export function withLibbpfLog<T>(fn: (capturedLog: () => string) => T): T {
  install();
  const outer = capturing;
  const lines: string[] = [];
  capturing = lines;
  try {
    return fn(() => lines.join(""));
  } finally {
    outer?.push(...lines);
    capturing = outer;
  }
}
