/**
 * The Kubernetes remotecommand channel protocol over WebSocket (what `kubectl exec` speaks since
 * 1.29 by default): each binary message starts with a channel byte.
 */

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const ERROR = 3;
export const RESIZE = 4;
/** v5 only: [255, channel] tells the other side that channel is closed (stdin EOF). */
export const CLOSE = 255;

/** Preference order; v4+ report exit codes as Status JSON on the error channel. */
export const SUPPORTED_PROTOCOLS = [
  "v5.channel.k8s.io",
  "v4.channel.k8s.io",
  "v3.channel.k8s.io",
  "v2.channel.k8s.io",
  "channel.k8s.io",
];

export function chooseProtocol(offered: Iterable<string>): string | undefined {
  const set = new Set([...offered].map((p) => p.trim()));
  return SUPPORTED_PROTOCOLS.find((p) => set.has(p));
}

export function frame(channel: number, data: Buffer | string = Buffer.alloc(0)): Buffer {
  const payload = typeof data === "string" ? Buffer.from(data) : data;
  return Buffer.concat([Buffer.from([channel]), payload]);
}

export interface ExecRequest {
  command: string[];
  container?: string;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

function truthy(value: string | null): boolean {
  return value === "true" || value === "1";
}

/**
 * The exec/attach options. kube-apiserver calls the kubelet with `input`, `output`, `error` and
 * `tty` set to "1" (k8s.io/api/core/v1 ExecStdinParam…, see pkg/registry/core/pod streamParams);
 * the pod subresource names (`stdin`, `stdout`, `stderr`) are accepted too. As the kubelet does,
 * stderr is dropped with a tty (the terminal merges it into stdout).
 */
export function parseExecQuery(query: URLSearchParams): ExecRequest {
  const flag = (kubeletName: string, podName: string) =>
    truthy(query.get(kubeletName)) || truthy(query.get(podName));
  const tty = truthy(query.get("tty"));
  return {
    command: query.getAll("command"),
    container: query.get("container") ?? undefined,
    stdin: flag("input", "stdin"),
    stdout: flag("output", "stdout"),
    stderr: flag("error", "stderr") && !tty,
    tty,
  };
}

/** The v4+ error-channel message for a finished command (what client-go turns into an exit code). */
export function exitStatus(exitCode: number, command: string[]): string {
  if (exitCode === 0) return JSON.stringify({ metadata: {}, status: "Success" });
  return JSON.stringify({
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: error executing command [${command.join(" ")}], exit code ${exitCode}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(exitCode) }] },
  });
}

export function failureStatus(message: string, code = 500): string {
  return JSON.stringify({ metadata: {}, status: "Failure", message, code });
}

/** {"Width":w,"Height":h} from the resize channel, or undefined when malformed. */
export function parseResize(data: Buffer): { width: number; height: number } | undefined {
  try {
    const parsed = JSON.parse(data.toString()) as { Width?: number; Height?: number };
    if (typeof parsed.Width === "number" && typeof parsed.Height === "number")
      return { width: parsed.Width, height: parsed.Height };
  } catch {
    // ignore a malformed resize
  }
  return undefined;
}

/** POSIX-shell quoting, for handing argv to `script -c`. */
export function shellQuote(argv: string[]): string {
  return argv
    .map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`))
    .join(" ");
}
