import { execFile, spawnSync } from "node:child_process";

export class CommandError extends Error {
  constructor(
    readonly command: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    options?: ErrorOptions,
  ) {
    super(
      `${command.join(" ")} failed (exit ${exitCode ?? "signal"}): ${stderr.trim() || "no output"}`,
      options,
    );
    this.name = "CommandError";
  }
}

export interface RunOptions {
  input?: string;
  /** Run inside this named network namespace (keeps the mount namespace, unlike `ip netns exec`). */
  netns?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

/** Prefixes argv so it runs in a network namespace without remounting /sys (bpffs and cgroup2 stay visible). */
export function inNetns(netns: string | undefined, argv: string[]): string[] {
  return netns ? ["nsenter", `--net=${netnsPath(netns)}`, "--", ...argv] : argv;
}

export function run(argv: string[], options: RunOptions = {}): Promise<string> {
  const full = inNetns(options.netns, argv);
  const [file, ...args] = full;
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, env: options.env ?? process.env },
      (error, stdout, stderr) => {
        if (error) {
          const code = typeof error.code === "number" ? error.code : null;
          reject(new CommandError(full, code, String(stderr) || error.message, { cause: error }));
        } else {
          resolve(String(stdout));
        }
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

export function runSync(argv: string[], options: RunOptions = {}): string {
  const full = inNetns(options.netns, argv);
  const result = spawnSync(full[0], full.slice(1), {
    input: options.input,
    encoding: "utf8",
    timeout: options.timeoutMs ?? 30_000,
    env: options.env ?? process.env,
  });
  if (result.error) throw new CommandError(full, null, result.error.message, { cause: result.error });
  if (result.status !== 0) throw new CommandError(full, result.status, result.stderr);
  return result.stdout;
}

export async function runJson<T>(argv: string[], options: RunOptions = {}): Promise<T> {
  const out = await run(argv, options);
  return (out.trim() ? JSON.parse(out) : []) as T;
}
