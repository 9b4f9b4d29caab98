import { spawn } from "node:child_process";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import type { V1Container, V1Probe } from "@kubernetes/client-node";

/**
 * exec, httpGet and tcpSocket probes as the kubelet runs them: exec inside the pod (netns +
 * cgroup), HTTP and TCP from the node to the pod IP. A probe result is true (success) or false.
 */

export interface ProbeTarget {
  podIp: string | undefined;
  /** argv running a command inside the container (undefined: it is not running). */
  execArgv: (command: string[]) => string[] | undefined;
  container: V1Container;
}

/** A named port resolved against the container's ports; numbers pass through. */
export function resolveProbePort(
  port: number | string | undefined,
  container: V1Container,
): number | undefined {
  if (port === undefined) return undefined;
  if (typeof port === "number") return port;
  if (/^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

export function probeTiming(probe: V1Probe) {
  return {
    initialDelayMs: (probe.initialDelaySeconds ?? 0) * 1000,
    periodMs: Math.max(1, probe.periodSeconds ?? 10) * 1000,
    timeoutMs: Math.max(1, probe.timeoutSeconds ?? 1) * 1000,
    successThreshold: Math.max(1, probe.successThreshold ?? 1),
    failureThreshold: Math.max(1, probe.failureThreshold ?? 3),
  };
}

function execProbe(command: string[], target: ProbeTarget, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const argv = target.execArgv(command);
    if (!argv) {
      resolve(false);
      return;
    }
    const child = spawn(argv[0], argv.slice(1), {
      stdio: "ignore",
      timeout: timeoutMs,
      killSignal: "SIGKILL",
    });
    child.on("error", () => resolve(false));
    child.on("close", (code) => resolve(code === 0));
  });
}

function httpProbe(
  probe: NonNullable<V1Probe["httpGet"]>,
  target: ProbeTarget,
  timeoutMs: number,
): Promise<boolean> {
  const port = resolveProbePort(probe.port as number | string, target.container);
  const host = probe.host || target.podIp;
  if (port === undefined || !host) return Promise.resolve(false);
  const request = probe.scheme === "HTTPS" ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const headers: Record<string, string> = { "User-Agent": "kube-probe/1.32" };
    for (const header of probe.httpHeaders ?? []) headers[header.name] = header.value;
    const req = request(
      {
        host,
        port,
        path: probe.path || "/",
        method: "GET",
        headers,
        timeout: timeoutMs,
        rejectUnauthorized: false,
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve(status >= 200 && status < 400);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(false));
    req.end();
  });
}

function tcpProbe(
  probe: NonNullable<V1Probe["tcpSocket"]>,
  target: ProbeTarget,
  timeoutMs: number,
): Promise<boolean> {
  const port = resolveProbePort(probe.port as number | string, target.container);
  const host = probe.host || target.podIp;
  if (port === undefined || !host) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.on("error", () => resolve(false));
  });
}

export async function runProbe(probe: V1Probe, target: ProbeTarget): Promise<boolean> {
  const { timeoutMs } = probeTiming(probe);
  if (probe.exec?.command?.length) return execProbe(probe.exec.command, target, timeoutMs);
  if (probe.httpGet) return httpProbe(probe.httpGet, target, timeoutMs);
  if (probe.tcpSocket) return tcpProbe(probe.tcpSocket, target, timeoutMs);
  return true; // grpc probes are not supported in the lab: treated as passing
}

/** Consecutive-result bookkeeping: flips only after successThreshold / failureThreshold results. */
export class ProbeState {
  private successes = 0;
  private failures = 0;

  constructor(
    private readonly successThreshold: number,
    private readonly failureThreshold: number,
    public passing: boolean,
  ) {}

  /** Records a result; returns true when `passing` changed. */
  record(success: boolean): boolean {
    if (success) {
      this.successes++;
      this.failures = 0;
      if (!this.passing && this.successes >= this.successThreshold) {
        this.passing = true;
        return true;
      }
    } else {
      this.failures++;
      this.successes = 0;
      if (this.passing && this.failures >= this.failureThreshold) {
        this.passing = false;
        return true;
      }
    }
    return false;
  }
}
