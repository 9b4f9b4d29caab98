import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { inNetns } from "./exec.js";

/** A process identified by PID *and* start time, so a recycled PID is never mistaken for ours. */
export interface ProcessRef {
  pid: number;
  startTime: string;
}

function readStat(pid: number): { state: string; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0], startTime: fields[19] }; // fields 3 and 22 overall
  } catch (error) {
    // ENOENT or ESRCH: no such process (any more); other errors are real
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "ESRCH") throw error;
    return undefined;
  }
}

export function processStartTime(pid: number): string | undefined {
  return readStat(pid)?.startTime;
}

export function isRunning(ref: ProcessRef): boolean {
  const stat = readStat(ref.pid);
  return stat !== undefined && stat.startTime === ref.startTime && stat.state !== "Z";
}

export interface StartOptions {
  argv: string[];
  netns?: string;
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Starts a long-running daemon detached from us (own session), output appended to logFile. */
export function startDaemon(options: StartOptions): ProcessRef {
  const argv = inNetns(options.netns, options.argv);
  const fd = openSync(options.logFile, "a");
  try {
    const child = spawn(argv[0], argv.slice(1), {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
    if (child.pid === undefined) throw new Error(`could not start ${argv[0]}`);
    child.unref();
    const startTime = processStartTime(child.pid);
    if (startTime === undefined) {
      throw new Error(`${options.argv[0]} exited immediately; see ${options.logFile}`);
    }
    return { pid: child.pid, startTime };
  } finally {
    closeSync(fd);
  }
}

/** Thrown from a waitFor probe to give up at once (e.g. the process being waited on died). */
export class WaitAborted extends Error {}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 10_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (error instanceof WaitAborted) throw error;
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. Never signals a recycled PID. */
export async function stopProcess(ref: ProcessRef, graceMs = 5_000): Promise<void> {
  if (!isRunning(ref)) return;
  signal(ref, "SIGTERM");
  try {
    await waitFor(`PID ${ref.pid} to exit`, () => !isRunning(ref), { timeoutMs: graceMs, intervalMs: 20 });
  } catch {
    signal(ref, "SIGKILL");
    await waitFor(`PID ${ref.pid} to exit after SIGKILL`, () => !isRunning(ref), { timeoutMs: 5_000 });
  }
}

function signal(ref: ProcessRef, name: NodeJS.Signals): void {
  if (processStartTime(ref.pid) !== ref.startTime) return;
  try {
    process.kill(ref.pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}
