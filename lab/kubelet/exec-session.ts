import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync, readlinkSync } from "node:fs";
import type { Logger } from "../../lib/log.js";
import type { PodWorker } from "./pod-worker.js";
import { type ExecRequest, shellQuote } from "./stream-protocol.js";

/**
 * One `exec` into a pod container, independent of the transport (WebSocket channels or SPDY
 * streams): the transport feeds stdin/resize/stdin-EOF in and gets output and the result out.
 */

export interface ExecOutput {
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
  /** The command ended with this exit code, or could not be run at all. Called once. */
  finished(result: { exitCode: number } | { error: string }): void;
}

export interface TerminalSize {
  width: number;
  height: number;
}

export class ExecSession {
  private child: ChildProcess | undefined;
  private size: TerminalSize | undefined;
  private readonly pending: Buffer[] = [];
  private stdinClosed = false;
  private done = false;
  private startTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: {
      worker: PodWorker;
      container: string;
      request: ExecRequest;
      log: Logger;
      /** Running children, so the server can kill them on shutdown. */
      registry: Set<ChildProcess>;
    },
    private readonly output: ExecOutput,
  ) {}

  /**
   * Starts now, or for a tty once the first terminal size arrived (clients send it right away;
   * 300 ms at most) so the pty starts with the right size.
   */
  start(): void {
    if (this.options.request.tty && !this.size) this.startTimer = setTimeout(() => this.spawn(), 300);
    else this.spawn();
  }

  stdin(chunk: Buffer): void {
    if (this.child?.stdin) this.child.stdin.write(chunk);
    else if (!this.child) this.pending.push(chunk);
  }

  closeStdin(): void {
    this.stdinClosed = true;
    this.child?.stdin?.end();
  }

  resize(size: TerminalSize): void {
    this.size = size;
    if (this.child) this.resizePty();
    else if (this.options.request.tty) this.spawn();
  }

  /** The client went away: the command goes too. */
  abort(): void {
    clearTimeout(this.startTimer);
    this.done = true;
    if (this.child && this.child.exitCode === null) this.child.kill("SIGKILL");
  }

  private finish(result: { exitCode: number } | { error: string }): void {
    if (this.done) return;
    this.done = true;
    this.output.finished(result);
  }

  private resizePty(): void {
    if (!this.child?.pid || !this.size) return;
    const tty = ptyOfChild(this.child.pid);
    if (tty)
      spawnSync("stty", ["-F", tty, "rows", String(this.size.height), "cols", String(this.size.width)], {
        stdio: "ignore",
      });
  }

  private spawn(): void {
    clearTimeout(this.startTimer);
    if (this.child || this.done) return;
    const { worker, container, request, log, registry } = this.options;
    const env = { ...(worker.execEnv(container) ?? {}), ...(request.tty ? { TERM: "xterm" } : {}) };
    const size = this.size;
    const command = request.tty
      ? [
          "script",
          "-q",
          "-e",
          "-c",
          `${size ? `stty rows ${size.height} cols ${size.width} 2>/dev/null; ` : ""}exec ${shellQuote(request.command)}`,
          "/dev/null",
        ]
      : request.command;
    const argv = worker.execArgv(container, command);
    if (!argv) {
      this.finish({ error: `container ${container} is not running` });
      return;
    }
    const child = spawn(argv[0], argv.slice(1), {
      env: { ...env, SHELL: "/bin/sh" },
      stdio: [request.stdin || request.tty ? "pipe" : "ignore", "pipe", "pipe"],
      cwd: "/",
    });
    this.child = child;
    registry.add(child);
    log.debug({ pid: child.pid, tty: request.tty }, "exec started");
    child.stdin?.on("error", () => undefined);
    for (const chunk of this.pending) child.stdin?.write(chunk);
    this.pending.length = 0;
    // A tty keeps its input open (script(1) ends the session on EOF), unless it was asked to close.
    if ((this.stdinClosed || !request.stdin) && !request.tty) child.stdin?.end();
    child.stdout?.on("data", (chunk: Buffer) => {
      if (request.stdout || request.tty) this.output.stdout(chunk);
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      if (request.stderr) this.output.stderr(chunk);
    });
    child.on("error", (error) => {
      registry.delete(child);
      this.finish({ error: `could not run ${request.command[0]}: ${error.message}` });
    });
    child.on("close", (code, signal) => {
      registry.delete(child);
      const exitCode = code ?? (signal ? 128 + (signal === "SIGKILL" ? 9 : 15) : 1);
      log.debug({ exitCode }, "exec finished");
      this.finish({ exitCode });
    });
  }
}

/** The pty `script` created: the terminal of its child. */
function ptyOfChild(pid: number): string | undefined {
  try {
    // `script` runs inside ip-netns-exec/sh which exec; its child is the shell on the pty.
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    for (const child of children) {
      const tty = readlinkSync(`/proc/${child}/fd/0`);
      if (tty.startsWith("/dev/pts/")) return tty;
    }
  } catch (error) {
    // ENOENT: the process is gone or has no child yet (the caller retries); anything else is a bug
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  return undefined;
}
