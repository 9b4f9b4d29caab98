import type {
  V1ContainerState,
  V1ContainerStatus,
  V1Pod,
  V1PodCondition,
  V1PodStatus,
} from "@kubernetes/client-node";

/**
 * The pod status the kubelet reports, computed from what the runner knows. Pure: transition times
 * come from the previous status so a condition's lastTransitionTime only moves when it flips.
 */

export interface ContainerView {
  name: string;
  image: string;
  state: V1ContainerState;
  lastState?: V1ContainerState;
  restartCount: number;
  ready: boolean;
  started: boolean;
  /** True once the container has run at least once. */
  everStarted: boolean;
  /** No further start will happen (restart policy says so). */
  final: boolean;
}

export interface PodView {
  sandboxReady: boolean;
  podIps: string[];
  hostIps: string[];
  containers: ContainerView[];
  /** Run in order to completion before the containers (Initialized once all have succeeded). */
  initContainers?: ContainerView[];
  /** Why the sandbox is not ready (shown on PodReadyToStartContainers). */
  sandboxMessage?: string;
  startTime?: Date;
}

const initialized = (view: PodView) =>
  (view.initContainers ?? []).every((c) => c.final && c.state.terminated?.exitCode === 0);

export function podPhase(view: PodView): V1PodStatus["phase"] {
  // an init container that failed and will not be retried (restartPolicy Never) fails the pod
  if ((view.initContainers ?? []).some((c) => c.final && (c.state.terminated?.exitCode ?? 0) !== 0))
    return "Failed";
  if (!initialized(view)) return "Pending";
  if (view.containers.length === 0) return view.sandboxReady ? "Running" : "Pending";
  if (view.containers.every((c) => c.final && c.state.terminated)) {
    return view.containers.every((c) => c.state.terminated?.exitCode === 0) ? "Succeeded" : "Failed";
  }
  if (!view.sandboxReady) return "Pending";
  if (view.containers.some((c) => !c.everStarted)) return "Pending";
  return "Running";
}

function condition(
  previous: V1PodCondition[] | undefined,
  type: string,
  ok: boolean,
  now: Date,
  reason?: string,
  message?: string,
): V1PodCondition {
  const before = previous?.find((c) => c.type === type);
  const status = ok ? "True" : "False";
  const lastTransitionTime =
    before?.status === status && before.lastTransitionTime ? before.lastTransitionTime : now;
  return {
    type,
    status,
    lastTransitionTime,
    ...(reason && !ok ? { reason } : {}),
    ...(message && !ok ? { message } : {}),
  };
}

export function buildPodStatus(pod: V1Pod, view: PodView, now = new Date()): V1PodStatus {
  const previous = pod.status?.conditions;
  const phase = podPhase(view);
  const containersReady = view.containers.length > 0 && view.containers.every((c) => c.ready);
  const notReady = view.containers.filter((c) => !c.ready).map((c) => c.name);
  const notReadyMessage = `containers with unready status: [${notReady.join(" ")}]`;
  const finished = phase === "Succeeded" || phase === "Failed";
  const statusOf = (c: ContainerView): V1ContainerStatus => ({
    name: c.name,
    image: c.image,
    imageID: "",
    containerID: "",
    ready: c.ready,
    started: c.started,
    restartCount: c.restartCount,
    state: c.state,
    ...(c.lastState ? { lastState: c.lastState } : { lastState: {} }),
  });
  const init = view.initContainers ?? [];
  const pendingInit = init.filter((c) => !(c.final && c.state.terminated?.exitCode === 0)).map((c) => c.name);
  // while init containers run, the app containers wait in PodInitializing (as the kubelet reports)
  const containerStatuses = view.containers.map((c) =>
    pendingInit.length && !c.everStarted
      ? statusOf({ ...c, state: { waiting: { reason: "PodInitializing" } } })
      : statusOf(c),
  );
  return {
    phase,
    conditions: [
      condition(previous, "PodReadyToStartContainers", view.sandboxReady, now, "", view.sandboxMessage),
      condition(
        previous,
        "Initialized",
        pendingInit.length === 0,
        now,
        "ContainersNotInitialized",
        `containers with incomplete status: [${pendingInit.join(" ")}]`,
      ),
      condition(
        previous,
        "Ready",
        containersReady && !finished,
        now,
        finished ? "PodCompleted" : "ContainersNotReady",
        notReadyMessage,
      ),
      condition(
        previous,
        "ContainersReady",
        containersReady && !finished,
        now,
        finished ? "PodCompleted" : "ContainersNotReady",
        notReadyMessage,
      ),
      condition(previous, "PodScheduled", true, now),
    ],
    hostIP: view.hostIps[0],
    hostIPs: view.hostIps.map((ip) => ({ ip })),
    ...(view.podIps.length ? { podIP: view.podIps[0], podIPs: view.podIps.map((ip) => ({ ip })) } : {}),
    startTime: pod.status?.startTime ?? view.startTime ?? now,
    containerStatuses,
    ...(init.length ? { initContainerStatuses: init.map(statusOf) } : {}),
    qosClass: pod.status?.qosClass ?? "BestEffort",
  };
}

/** Compares statuses without timestamps, to skip writes that change nothing. */
export function statusKey(status: V1PodStatus | undefined): string {
  return JSON.stringify(status ?? {}, (k, v) =>
    k === "lastTransitionTime" || k === "lastProbeTime" || k === "startTime"
      ? undefined
      : v instanceof Date
        ? v.toISOString()
        : v,
  );
}
