import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { V1Container, V1ContainerState, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../../lib/log.js";
import { isRunning, type ProcessRef, processStartTime, stopProcess } from "../../lib/process.js";
import { type CniResult, type CniRuntime, podIpsFromResult, type RuntimeContext } from "./cni.js";
import {
  ContainerConfigError,
  containerEnv,
  expandVariables,
  type ReferencedObjects,
  referencedNames,
} from "./container-env.js";
import { type ContainerRoot, enterContainerArgv, rootedArgv } from "./container-root.js";
import { type ClusterDns, podResolvConf } from "./dns.js";
import { readImageStore, resolveImage } from "./images.js";
import { formatChunk } from "./log-format.js";
import { buildPodStatus, type ContainerView, statusKey } from "./pod-status.js";
import { ProbeState, probeTiming, runProbe } from "./probes.js";
import {
  createCgroup,
  createNetns,
  deleteNetns,
  inPodArgv,
  podCgroupName,
  podNetnsName,
  removeCgroup,
} from "./sandbox.js";
import type { PodRecord, StateStore } from "./state.js";
import { fillVolume, prepareHostPath, type VolumeSourceApi } from "./volume-files.js";
import {
  containerMounts,
  type NodeFileSystem,
  podVolumeBackings,
  type VolumeBacking,
  VolumeError,
} from "./volumes.js";

/**
 * One pod's lifecycle on this node: sandbox (netns + CNI + cgroup), container processes with
 * restarts and probes, status reports, and teardown. All work is serialized per pod.
 */

export interface PodApi extends VolumeSourceApi {
  updateStatus(pod: V1Pod, status: NonNullable<V1Pod["status"]>): Promise<void>;
  /** Deletes the pod object with grace period 0 once everything is cleaned up. */
  deletePod(pod: V1Pod): Promise<void>;
  event(pod: V1Pod, type: "Normal" | "Warning", reason: string, message: string): Promise<void>;
  /** The `kubernetes` Service's ClusterIP and port (undefined when there is none). */
  kubernetesService(): Promise<{ host: string; port: number } | undefined>;
}

export interface NodeContext {
  nodeName: string;
  nodeIps: string[];
  clusterName: string;
  netnsPrefix: string;
  cgroupRoot: string;
  cni: CniRuntime;
  state: StateStore;
  api: PodApi;
  log: Logger;
  /** `--cluster-dns`/`--cluster-domain`: what ClusterFirst pods resolve with. */
  dns?: ClusterDns;
  /** Where hostPath volumes are on this node (`--node-root`, `--host-path-map`). */
  fileSystem: NodeFileSystem;
  /** The node's image store file (`--image-store`): images with layers of their own. */
  imageStore?: string;
  /** Names the node resolves besides its own /etc/hosts (`--node-hosts-file`: the lab's nodes). */
  nodeHostsFile?: string;
  /** Base of the restart back-off (doubles per restart, capped at 30 s); 1 s by default in the lab. */
  restartBackoffMs?: number;
  sandboxRetryMs?: number;
}

interface ContainerRuntime {
  spec: V1Container;
  /** An init container: runs to completion, in order, before the app containers start. */
  init: boolean;
  /** The environment it was started with (kubectl exec gets the same). */
  env?: Record<string, string>;
  /** Resolves once the running process's root is set up (before: still the setup script). */
  setUp?: Promise<void>;
  restartCount: number;
  child?: ChildProcess;
  ref?: ProcessRef;
  state: V1ContainerState;
  lastState?: V1ContainerState;
  everStarted: boolean;
  final: boolean;
  nextStartAt: number;
  readiness?: ProbeState;
  liveness?: ProbeState;
  probeTimers: NodeJS.Timeout[];
  /** Reason of the last Warning event, so a persistent failure is reported once. */
  lastWarning?: string;
}

const MAX_BACKOFF_MS = 30_000;

/** Appends the child's stdout and stderr to the log fd as CRI records; closes the fd when both end. */
function writeContainerLog(child: ChildProcess, fd: number): void {
  let open = 2;
  const done = () => {
    open--;
    if (open === 0) closeSync(fd);
  };
  for (const [stream, pipe] of [
    ["stdout", child.stdout],
    ["stderr", child.stderr],
  ] as const) {
    if (!pipe) {
      done();
      continue;
    }
    pipe.setEncoding("utf8");
    pipe.on("data", (chunk: string) => {
      try {
        writeSync(fd, formatChunk(stream, chunk));
      } catch {
        // the log directory was removed (pod torn down): the output has nowhere to go
      }
    });
    pipe.once("close", done);
  }
}

export function containerIdFor(podUid: string): string {
  return createHash("sha256").update(`sandbox/${podUid}`).digest("hex");
}

export class PodWorker {
  pod: V1Pod;
  readonly uid: string;
  private readonly log: Logger;
  private readonly containers = new Map<string, ContainerRuntime>();
  private sandbox: { netns?: string; cgroupDir: string; cniResult?: CniResult; podIps: string[] } | undefined;
  private sandboxFailures = 0;
  private sandboxRetryAt = 0;
  private sandboxMessage: string | undefined;
  private lastReported = "";
  private removed = false;
  private running: Promise<void> = Promise.resolve();
  private queued = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeAt = 0;
  /** Renews projected tokens; apart from wakeTimer, which settled() waits for. */
  private tokenTimer: NodeJS.Timeout | undefined;
  private done = false;
  private startTime: Date | undefined;
  /** The pod's volumes once set up (hostPaths checked, kubelet volumes filled); undefined before. */
  private volumes: Map<string, VolumeBacking> | undefined;
  private volumeRetryAt = 0;
  private volumeFailures = 0;
  /** When projected service-account tokens are due for renewal. */
  private tokenRefreshAt: number | undefined;

  constructor(
    pod: V1Pod,
    private readonly node: NodeContext,
    private readonly onFinished: (worker: PodWorker) => void,
  ) {
    this.pod = pod;
    this.uid = pod.metadata?.uid ?? "";
    this.log = node.log.child({ pod: `${pod.metadata?.namespace}/${pod.metadata?.name}` });
    const specs = [
      ...(pod.spec?.initContainers ?? []).map((spec) => ({ spec, init: true })),
      ...(pod.spec?.containers ?? []).map((spec) => ({ spec, init: false })),
    ];
    for (const { spec, init } of specs) {
      this.containers.set(spec.name, {
        spec,
        init,
        restartCount: 0,
        state: { waiting: { reason: "ContainerCreating" } },
        everStarted: false,
        final: false,
        nextStartAt: 0,
        probeTimers: [],
      });
    }
  }

  get namespace(): string {
    return this.pod.metadata?.namespace ?? "default";
  }

  get name(): string {
    return this.pod.metadata?.name ?? "";
  }

  get netns(): string | undefined {
    return this.sandbox?.netns;
  }

  get cgroupDir(): string | undefined {
    return this.sandbox?.cgroupDir;
  }

  /** The app containers (kubectl logs/exec pick among them by default). */
  containerNames(): string[] {
    return [...this.containers.values()].filter((c) => !c.init).map((c) => c.spec.name);
  }

  hasContainer(name: string): boolean {
    return this.containers.has(name);
  }

  restartCount(container: string): number | undefined {
    return this.containers.get(container)?.restartCount;
  }

  isContainerRunning(container: string): boolean {
    return Boolean(this.containers.get(container)?.child);
  }

  /** The environment a command exec'd into this container gets (the container's own). */
  execEnv(container: string): Record<string, string> | undefined {
    return this.containers.get(container)?.env;
  }

  /** argv running a command inside the running container (its cgroup, namespaces and root). */
  execArgv(container: string, command: string[]): string[] | undefined {
    const runtime = this.containers.get(container);
    if (!runtime?.state.running) return undefined;
    const pid = runtime.ref?.pid;
    if (pid === undefined) return undefined;
    return inPodArgv({ cgroupDir: this.sandbox?.cgroupDir, argv: enterContainerArgv(pid, command) });
  }

  get finished(): boolean {
    return this.done;
  }

  logFile(container: string, restart: number): string {
    return join(this.node.state.podLogDir(this.pod), container, `${restart}.log`);
  }

  /** The newest pod object from the API (or that it is gone). */
  update(pod: V1Pod | undefined): void {
    if (pod) this.pod = pod;
    else this.removed = true;
    this.kick();
  }

  /** Stops everything without deleting the pod object (kubelet shutdown). */
  async shutdown(): Promise<void> {
    this.removed = true;
    this.kick();
    await this.settled();
  }

  async settled(): Promise<void> {
    while (this.queued || this.wakeTimer) {
      await this.running;
      await new Promise((resolve) => setImmediate(resolve));
      if (this.done) return;
    }
    await this.running;
  }

  private kick(delayMs = 0): void {
    if (this.done) return;
    if (delayMs > 0) {
      // one timer, for the earliest wake-up asked for
      const at = Date.now() + delayMs;
      if (this.wakeTimer && this.wakeAt <= at) return;
      clearTimeout(this.wakeTimer);
      this.wakeAt = at;
      this.wakeTimer = setTimeout(() => {
        this.wakeTimer = undefined;
        this.kick();
      }, delayMs);
      return;
    }
    if (this.queued) return;
    this.queued = true;
    this.running = this.running.then(async () => {
      this.queued = false;
      try {
        await this.sync();
      } catch (error) {
        this.log.warn({ err: error }, "pod sync failed; retrying");
        this.kick(1_000);
      }
    });
  }

  private get terminating(): boolean {
    return this.removed || Boolean(this.pod.metadata?.deletionTimestamp);
  }

  private async sync(): Promise<void> {
    if (this.done) return;
    if (this.terminating) {
      await this.teardown();
      if (!this.removed) await this.node.api.deletePod(this.pod);
      this.done = true;
      clearTimeout(this.wakeTimer);
      clearTimeout(this.tokenTimer);
      this.wakeTimer = undefined;
      this.onFinished(this);
      return;
    }
    if (!this.sandbox) {
      if (Date.now() < this.sandboxRetryAt) {
        this.kick(this.sandboxRetryAt - Date.now());
        return;
      }
      await this.createSandbox();
      if (!this.sandbox) {
        await this.report();
        return;
      }
    }
    if (!this.volumes || (this.tokenRefreshAt !== undefined && Date.now() >= this.tokenRefreshAt)) {
      if (Date.now() < this.volumeRetryAt) {
        this.kick(this.volumeRetryAt - Date.now());
        return;
      }
      await this.setUpVolumes();
      if (!this.volumes) {
        await this.report();
        return;
      }
    }
    let nextWake = Number.POSITIVE_INFINITY;
    for (const container of this.runnableContainers()) {
      if (container.child || container.final) continue;
      if (Date.now() < container.nextStartAt) {
        nextWake = Math.min(nextWake, container.nextStartAt);
        continue;
      }
      await this.startContainer(container);
    }
    if (Number.isFinite(nextWake)) this.kick(Math.max(1, nextWake - Date.now()));
    await this.report();
  }

  // --- sandbox -----------------------------------------------------------------------------------

  private runtimeContext(netns: string): RuntimeContext {
    const hostPorts = (this.pod.spec?.containers ?? []).flatMap((c) =>
      (c.ports ?? [])
        .filter((p) => p.hostPort)
        .map((p) => ({
          hostPort: p.hostPort,
          containerPort: p.containerPort,
          protocol: (p.protocol ?? "TCP").toLowerCase(),
          hostIP: p.hostIP ?? "",
        })),
    );
    return {
      containerId: containerIdFor(this.uid),
      netnsPath: `/run/netns/${netns}`,
      ifName: "eth0",
      podNamespace: this.namespace,
      podName: this.name,
      podUid: this.uid,
      capabilityArgs: hostPorts.length ? { portMappings: hostPorts } : {},
    };
  }

  private async createSandbox(): Promise<void> {
    const hostNetwork = this.pod.spec?.hostNetwork === true;
    const cgroupDir = join(this.node.cgroupRoot, podCgroupName(this.uid));
    const record: PodRecord = {
      uid: this.uid,
      namespace: this.namespace,
      name: this.name,
      cgroupDir,
      containerId: containerIdFor(this.uid),
      processes: [],
    };
    if (hostNetwork) {
      this.node.state.savePod(record);
      createCgroup(this.node.cgroupRoot, podCgroupName(this.uid));
      this.sandbox = { cgroupDir, podIps: [...this.node.nodeIps] };
      this.startTime ??= new Date();
      return;
    }
    const netns = podNetnsName(this.node.netnsPrefix, this.uid);
    record.netns = netns;
    // Recorded before anything exists, so a crashed kubelet's successor can clean up.
    this.node.state.savePod(record);
    let config: ReturnType<CniRuntime["config"]> | undefined;
    try {
      config = this.node.cni.config();
      await createNetns(netns);
      const result = await this.node.cni.add(config, this.runtimeContext(netns));
      record.cniResult = result;
      record.networkName = config.name;
      this.node.state.savePod(record);
      createCgroup(this.node.cgroupRoot, podCgroupName(this.uid));
      const podIps = podIpsFromResult(result);
      this.sandbox = { netns, cgroupDir, cniResult: result, podIps };
      this.sandboxFailures = 0;
      this.sandboxMessage = undefined;
      this.startTime ??= new Date();
      this.log.info({ netns, podIps }, "pod sandbox ready");
    } catch (error) {
      const message = (error as Error).message;
      this.log.warn({ err: error }, "pod sandbox creation failed");
      // The spec asks runtimes to DEL after a failed ADD so plugins release what they took.
      if (config) {
        await this.node.cni
          .del(config, this.runtimeContext(netns), undefined)
          .catch((delError) => this.log.warn({ err: delError }, "CNI DEL after the failed ADD failed"));
      }
      await deleteNetns(netns).catch((cleanup) =>
        this.log.warn({ netns, err: cleanup }, "netns not removed"),
      );
      await removeCgroup(cgroupDir).catch((cleanup) =>
        this.log.warn({ cgroup: cgroupDir, err: cleanup }, "cgroup not removed"),
      );
      this.node.state.removePod(this.uid);
      this.sandboxFailures++;
      const backoff = Math.min(
        MAX_BACKOFF_MS,
        (this.node.sandboxRetryMs ?? 2_000) * 2 ** (this.sandboxFailures - 1),
      );
      this.sandboxRetryAt = Date.now() + backoff;
      this.kick(backoff);
      const eventMessage = `Failed to create pod sandbox: ${message}`;
      if (this.sandboxMessage !== eventMessage) {
        this.sandboxMessage = eventMessage;
        await this.node.api
          .event(this.pod, "Warning", "FailedCreatePodSandBox", eventMessage)
          .catch((eventError) => this.log.debug({ err: eventError }, "event not recorded"));
      }
    }
  }

  // --- volumes -----------------------------------------------------------------------------------

  private get podDir(): string {
    return this.node.state.podDir(this.uid);
  }

  /** Checks and creates hostPaths, fills the kubelet's volumes; a failure is retried with back-off. */
  private async setUpVolumes(): Promise<void> {
    try {
      const backings = podVolumeBackings(this.pod, this.podDir, this.node.fileSystem);
      let refreshAt: number | undefined;
      for (const volume of this.pod.spec?.volumes ?? []) {
        const backing = backings.get(volume.name) as VolumeBacking;
        if (backing.kind === "hostPath") prepareHostPath(backing);
        else {
          const filled = await fillVolume(volume, backing.dir, this.pod, this.node.api);
          if (filled.refreshAt !== undefined)
            refreshAt = Math.min(refreshAt ?? filled.refreshAt, filled.refreshAt);
        }
      }
      this.writeEtcFiles();
      this.volumes = backings;
      this.tokenRefreshAt = refreshAt;
      clearTimeout(this.tokenTimer);
      if (refreshAt !== undefined) {
        this.tokenTimer = setTimeout(() => this.kick(), Math.max(1, refreshAt - Date.now()));
        this.tokenTimer.unref();
      }
      this.volumeFailures = 0;
    } catch (error) {
      const volume = error instanceof VolumeError ? error.volume : "?";
      const message = `MountVolume.SetUp failed for volume "${volume}" : ${(error as Error).message}`;
      this.log.warn({ err: error, volume }, "volume setup failed; retrying");
      this.volumeFailures++;
      const backoff = Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** (this.volumeFailures - 1));
      this.volumeRetryAt = Date.now() + backoff;
      this.kick(backoff);
      if (this.sandboxMessage !== message) {
        this.sandboxMessage = message;
        await this.node.api
          .event(this.pod, "Warning", "FailedMount", message)
          .catch((eventError) => this.log.debug({ err: eventError }, "event not recorded"));
      }
    }
  }

  /** The pod's hostname: spec.hostname, else its name; the node's name with hostNetwork. */
  private hostname(): string {
    if (this.pod.spec?.hostNetwork === true) return this.node.nodeName;
    return this.pod.spec?.hostname ?? this.name;
  }

  /** The files a runtime puts in every container's /etc: resolv.conf (per dnsPolicy), hosts, hostname. */
  private writeEtcFiles(): void {
    const dir = join(this.podDir, "etc");
    mkdirSync(dir, { recursive: true });
    const hostNetwork = this.pod.spec?.hostNetwork === true;
    const hostname = this.hostname();
    writeFileSync(
      join(dir, "resolv.conf"),
      podResolvConf(this.pod, this.node.dns) ?? readFileSync("/etc/resolv.conf"),
    );
    writeFileSync(join(dir, "hostname"), `${hostname}\n`);
    writeFileSync(
      join(dir, "hosts"),
      hostNetwork
        ? `${readFileSync("/etc/hosts", "utf8")}${this.node.nodeHostsFile ? readFileSync(this.node.nodeHostsFile, "utf8") : ""}`
        : [
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            ...(this.sandbox?.podIps ?? []).map((ip) => `${ip}\t${hostname}`),
            "",
          ].join("\n"),
    );
  }

  // --- containers --------------------------------------------------------------------------------

  /** The first init container not yet completed, alone; once all have, the app containers. */
  private runnableContainers(): ContainerRuntime[] {
    const all = [...this.containers.values()];
    const pendingInit = all.find((c) => c.init && !(c.final && c.state.terminated?.exitCode === 0));
    if (pendingInit) return [pendingInit];
    return all.filter((c) => !c.init);
  }

  /** The ConfigMaps and Secrets the container's env names, read now (absent ones as undefined). */
  private async referencedObjects(spec: V1Container): Promise<ReferencedObjects> {
    const names = referencedNames(spec);
    const read = async (
      set: Set<string>,
      get: (namespace: string, name: string) => Promise<Record<string, Buffer> | undefined>,
    ) =>
      new Map(
        await Promise.all([...set].map(async (name) => [name, await get(this.namespace, name)] as const)),
      );
    return {
      configMaps: await read(names.configMaps, (ns, name) => this.node.api.readConfigMap(ns, name)),
      secrets: await read(names.secrets, (ns, name) => this.node.api.readSecret(ns, name)),
    };
  }

  private async warnOnce(container: ContainerRuntime, reason: string, message: string): Promise<void> {
    if (container.lastWarning === `${reason}/${message}`) return;
    container.lastWarning = `${reason}/${message}`;
    await this.node.api
      .event(this.pod, "Warning", reason === "ErrImagePull" ? "Failed" : reason, message)
      .catch((eventError) => this.log.debug({ err: eventError }, "event not recorded"));
  }

  private async startContainer(container: ContainerRuntime): Promise<void> {
    const { spec } = container;
    const image = resolveImage(
      spec.image,
      spec.command,
      spec.args,
      undefined,
      readImageStore(this.node.imageStore),
    );
    if (!image.ok) {
      container.state = { waiting: { reason: image.reason, message: image.message } };
      await this.warnOnce(container, image.reason, image.message);
      return;
    }
    let env: Record<string, string>;
    let root: ContainerRoot;
    try {
      env = containerEnv(
        this.pod,
        spec,
        {
          nodeName: this.node.nodeName,
          nodeIps: this.node.nodeIps,
          podIps: this.sandbox?.podIps ?? [],
          clusterName: this.node.clusterName,
          imageEnv: image.env,
          kubernetesService: await this.node.api.kubernetesService(),
        },
        await this.referencedObjects(spec),
      );
      const scratch = join(this.podDir, "containers", spec.name, String(container.restartCount));
      mkdirSync(scratch, { recursive: true });
      const etc = join(this.podDir, "etc");
      root = {
        scratch,
        layers: image.layers,
        mounts: containerMounts(spec, this.volumes ?? new Map()),
        files: ["resolv.conf", "hosts", "hostname"].map((file) => ({
          target: `/etc/${file}`,
          source: join(etc, file),
        })),
        privileged: spec.securityContext?.privileged === true,
        workingDir: spec.workingDir || "/",
        hostname: this.hostname(),
      };
    } catch (error) {
      if (!(error instanceof ContainerConfigError || error instanceof VolumeError)) throw error;
      const message = error.message;
      container.state = { waiting: { reason: "CreateContainerConfigError", message } };
      await this.warnOnce(container, "Failed", `Error: ${message}`);
      container.nextStartAt = Date.now() + this.backoff(container);
      this.kick(this.backoff(container));
      return;
    }
    const logFile = this.logFile(spec.name, container.restartCount);
    mkdirSync(join(logFile, ".."), { recursive: true });
    const fd = openSync(logFile, "a");
    let child: ChildProcess;
    try {
      const argv = inPodArgv({
        cgroupDir: this.sandbox?.cgroupDir,
        netns: this.sandbox?.netns,
        // command and args see the container's env as $(VAR), as the kubelet expands them
        argv: rootedArgv(
          root,
          image.argv.map((arg) => expandVariables(arg, env)),
        ),
      });
      // Output comes through us, stamped per line in the CRI log format (./log-format.ts).
      child = spawn(argv[0], argv.slice(1), {
        detached: true,
        // fd 3: closed by the setup when the container's root is ready (container-root.ts)
        stdio: ["ignore", "pipe", "pipe", "pipe"],
        env,
        cwd: "/",
      });
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    container.env = env;
    writeContainerLog(child, fd);
    const pid = child.pid;
    const startTime = pid === undefined ? undefined : processStartTime(pid);
    if (pid === undefined || startTime === undefined) {
      container.state = {
        waiting: { reason: "RunContainerError", message: `could not start ${image.argv[0]}` },
      };
      await this.warnOnce(container, "Failed", `Error: could not start ${image.argv[0]}`);
      container.nextStartAt = Date.now() + this.backoff(container);
      return;
    }
    child.on("error", () => undefined);
    const ref = { pid, startTime };
    container.child = child;
    container.ref = ref;
    container.everStarted = true;
    container.lastWarning = undefined;
    const startedAt = new Date();
    // running once its root is set up (the setup closes fd 3 just before it execs the command):
    // an exec or probe before that would find the host's file system
    container.state = { waiting: { reason: "ContainerCreating" } };
    this.recordProcesses();
    child.on("exit", (code, signal) => this.containerExited(container, child, code, signal, startedAt));
    container.setUp = new Promise<void>((resolve) => {
      // a pipe in the child's stdio: a net.Socket, readable and writable
      const setup = child.stdio[3] as NodeJS.ReadableStream | null;
      if (!setup) return resolve();
      setup.on("error", () => resolve());
      setup.once("close", () => resolve());
      setup.resume();
    });
    await container.setUp;
    if (container.child !== child) return;
    container.state = { running: { startedAt } };
    this.log.info({ container: spec.name, pid, argv: image.argv }, "container started");
    this.startProbes(container);
    await this.node.api
      .event(this.pod, "Normal", "Started", `Started container ${spec.name}`)
      .catch((eventError) => this.log.debug({ err: eventError }, "event not recorded"));
  }

  private backoff(container: ContainerRuntime): number {
    return Math.min(
      MAX_BACKOFF_MS,
      (this.node.restartBackoffMs ?? 1_000) * 2 ** Math.max(0, container.restartCount - 1),
    );
  }

  private containerExited(
    container: ContainerRuntime,
    child: ChildProcess,
    code: number | null,
    signal: NodeJS.Signals | null,
    startedAt: Date,
  ): void {
    if (container.child !== child) return;
    container.child = undefined;
    container.ref = undefined;
    this.stopProbes(container);
    container.readiness = undefined;
    const exitCode = code ?? 128 + (signal === "SIGKILL" ? 9 : signal === "SIGTERM" ? 15 : 1);
    const terminated: V1ContainerState = {
      terminated: {
        exitCode,
        ...(signal ? { signal: signal === "SIGKILL" ? 9 : 15 } : {}),
        reason: exitCode === 0 ? "Completed" : "Error",
        startedAt,
        finishedAt: new Date(),
      },
    };
    this.recordProcesses();
    this.log.info({ container: container.spec.name, exitCode }, "container exited");
    if (this.terminating) {
      container.state = terminated;
      return;
    }
    const policy = this.pod.spec?.restartPolicy ?? "Always";
    // an init container that succeeded is done; one that failed is retried unless the pod never restarts
    const restart = container.init
      ? exitCode !== 0 && policy !== "Never"
      : policy === "Always" || (policy === "OnFailure" && exitCode !== 0);
    if (restart) {
      container.lastState = terminated;
      container.restartCount++;
      const delay = this.backoff(container);
      container.nextStartAt = Date.now() + delay;
      container.state = {
        waiting: {
          reason: "CrashLoopBackOff",
          message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${container.spec.name} pod=${this.name}_${this.namespace}(${this.uid})`,
        },
      };
    } else {
      container.state = terminated;
      container.final = true;
    }
    this.kick();
  }

  private startProbes(container: ContainerRuntime): void {
    const target = () => ({
      podIp: this.sandbox?.podIps[0],
      execArgv: (command: string[]) => this.execArgv(container.spec.name, command),
      container: container.spec,
    });
    const schedule = (probe: NonNullable<V1Container["readinessProbe"]>, onResult: (ok: boolean) => void) => {
      const timing = probeTiming(probe);
      const tick = async () => {
        if (!container.child) return;
        const ok = await runProbe(probe, target());
        if (!container.child) return;
        onResult(ok);
        container.probeTimers.push(setTimeout(tick, timing.periodMs));
      };
      container.probeTimers.push(setTimeout(tick, timing.initialDelayMs));
    };
    if (container.spec.readinessProbe) {
      const timing = probeTiming(container.spec.readinessProbe);
      const state = new ProbeState(timing.successThreshold, timing.failureThreshold, false);
      container.readiness = state;
      schedule(container.spec.readinessProbe, (ok) => {
        if (state.record(ok)) this.kick();
      });
    }
    if (container.spec.livenessProbe) {
      const timing = probeTiming(container.spec.livenessProbe);
      const state = new ProbeState(1, timing.failureThreshold, true);
      schedule(container.spec.livenessProbe, (ok) => {
        if (state.record(ok) && !state.passing && container.ref) {
          this.log.info({ container: container.spec.name }, "liveness probe failed; restarting");
          void this.node.api
            .event(
              this.pod,
              "Warning",
              "Unhealthy",
              `Liveness probe failed; container ${container.spec.name} will be restarted`,
            )
            .catch((eventError) => this.log.debug({ err: eventError }, "event not recorded"));
          void stopProcess(container.ref, this.graceMs());
        }
      });
    }
  }

  private stopProbes(container: ContainerRuntime): void {
    for (const timer of container.probeTimers) clearTimeout(timer);
    container.probeTimers = [];
  }

  private recordProcesses(): void {
    const record = this.node.state.loadPod(this.uid);
    if (!record) return;
    record.processes = [...this.containers.values()].flatMap((c) =>
      c.ref ? [{ ...c.ref, container: c.spec.name }] : [],
    );
    this.node.state.savePod(record);
  }

  private graceMs(): number {
    const seconds =
      this.pod.metadata?.deletionGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30;
    return Math.max(0, seconds) * 1000;
  }

  // --- status ------------------------------------------------------------------------------------

  private view(init: boolean): ContainerView[] {
    return [...this.containers.values()]
      .filter((c) => c.init === init)
      .map((c) => {
        const running = Boolean(c.state.running);
        return {
          name: c.spec.name,
          image: c.spec.image ?? "",
          state: c.state,
          lastState: c.lastState,
          restartCount: c.restartCount,
          ready: running && (c.readiness ? c.readiness.passing : true),
          started: running,
          everStarted: c.everStarted,
          final: c.final,
        };
      });
  }

  private async report(): Promise<void> {
    if (this.terminating) return;
    const status = buildPodStatus(this.pod, {
      sandboxReady: Boolean(this.sandbox),
      podIps: this.sandbox?.podIps ?? [],
      hostIps: this.node.nodeIps,
      containers: this.view(false),
      initContainers: this.view(true),
      sandboxMessage: this.sandboxMessage,
      startTime: this.startTime,
    });
    const key = statusKey(status);
    if (key === this.lastReported) return;
    await this.node.api.updateStatus(this.pod, status);
    this.lastReported = key;
  }

  // --- teardown ------------------------------------------------------------------------------------

  private async teardown(): Promise<void> {
    const grace = this.graceMs();
    await Promise.all(
      [...this.containers.values()].map(async (container) => {
        this.stopProbes(container);
        container.final = true;
        if (container.ref) await stopProcess(container.ref, grace);
      }),
    );
    const record = this.node.state.loadPod(this.uid);
    await teardownRecord(record, this.node, this.log);
    rmSync(this.node.state.podLogDir(this.pod), { recursive: true, force: true });
    this.log.info("pod torn down");
  }
}

/** Removes what a pod record says exists: processes (by PID + start time), network, netns, cgroup. */
export async function teardownRecord(
  record: PodRecord | undefined,
  node: NodeContext,
  log: Logger,
): Promise<void> {
  if (!record) return;
  for (const ref of record.processes) if (isRunning(ref)) await stopProcess(ref, 2_000);
  if (record.netns) {
    try {
      const config = node.cni.config();
      const context: RuntimeContext = {
        containerId: record.containerId,
        netnsPath: `/run/netns/${record.netns}`,
        ifName: "eth0",
        podNamespace: record.namespace,
        podName: record.name,
        podUid: record.uid,
      };
      await node.cni.del(config, context, record.cniResult);
    } catch (error) {
      // DEL is best effort: the netns goes anyway, and with it the pod's interfaces.
      log.warn({ err: error, pod: `${record.namespace}/${record.name}` }, "CNI DEL failed");
    }
    await deleteNetns(record.netns);
  }
  await removeCgroup(record.cgroupDir);
  node.state.removePod(record.uid);
}
