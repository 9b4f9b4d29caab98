import type { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { MESH_NAMESPACE } from "../api/rbac.js";
import { apiErrorMessage, coreApi, isConflict, isNotFound, readSecret } from "../k8s/client.js";
import { UsageError } from "../usage-error.js";
import { type ClusterAccess, connectProblems, readClusterAccess, sameCa } from "./access.js";
import { readRelayMeshEndpoint, updateRelayPeers } from "./relay-peers.js";
import { COMMON_CLIENT, remoteCaKey, renderRemoteClusterConfig } from "./remote-config.js";
import { MeshObjects } from "./resources.js";

export type ConnectionMode = "bidirectional" | "mesh" | "unicast";

export interface ConnectOptions {
  source: string;
  destinations: string[];
  mode: ConnectionMode;
  allowMismatchingCa: boolean;
  progress: (line: string) => void;
  /** Per-context API deadline: an unreachable cluster fails the command before anything is written. */
  timeoutMs?: number;
  /** The kubeconfig file the user named, only for the commands printed in hints. */
  kubeconfig?: string;
}

interface Peer {
  access: ClusterAccess;
  core: CoreV1Api;
}

function withDeadline<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new UsageError(`${what}: no answer within ${ms / 1000} s (is the cluster reachable?)`)),
      ms,
    );
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

async function readPeers(
  contexts: string[],
  kcFor: (context: string) => KubeConfig,
  timeoutMs: number,
  kubeconfig: string | undefined,
): Promise<Peer[]> {
  return Promise.all(
    contexts.map(async (context) => {
      const core = coreApi(kcFor(context));
      try {
        const access = await withDeadline(
          `context ${context}`,
          readClusterAccess(core, context, kubeconfig),
          timeoutMs,
        );
        return { access, core };
      } catch (error) {
        if (error instanceof UsageError) throw error;
        throw new UsageError(`context ${context}: ${apiErrorMessage(error)}`);
      }
    }),
  );
}

/** Which cluster gets a connection config for which (from → to). Pure. */
export function connectionPairs(
  source: string,
  destinations: string[],
  mode: ConnectionMode,
): [string, string][] {
  if (mode === "mesh") {
    const all = [source, ...destinations];
    return all.flatMap((from) => all.filter((to) => to !== from).map((to): [string, string] => [from, to]));
  }
  return destinations.flatMap((to): [string, string][] =>
    mode === "unicast"
      ? [[source, to]]
      : [
          [source, to],
          [to, source],
        ],
  );
}

/** The pairs grouped by the cluster that gets the connection configs, in pair order. Pure. */
export function groupBySource(pairs: [string, string][]): Map<string, string[]> {
  const grouped = new Map<string, string[]>();
  for (const [from, to] of pairs) grouped.set(from, [...(grouped.get(from) ?? []), to]);
  return grouped;
}

/** Read-modify-write of the remotes Secret with optimistic concurrency: concurrent connects never lose each other's entries. */
async function updateRemotes(core: CoreV1Api, change: (data: Record<string, string>) => void): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const secret = await readSecret(core, MeshObjects.remotes);
    const data: Record<string, string> = { ...(secret?.data ?? {}) };
    change(data);
    try {
      if (secret) {
        await core.replaceNamespacedSecret({
          name: MeshObjects.remotes,
          namespace: MESH_NAMESPACE,
          body: { ...secret, data },
        });
      } else {
        await core.createNamespacedSecret({
          namespace: MESH_NAMESPACE,
          body: { metadata: { name: MeshObjects.remotes, namespace: MESH_NAMESPACE }, data },
        });
      }
      return;
    } catch (error) {
      if (!isConflict(error) || attempt >= 5) throw error;
    }
  }
}

const b64 = (text: string) => Buffer.from(text).toString("base64");

export async function connectClusters(
  kcFor: (context: string) => KubeConfig,
  options: ConnectOptions,
): Promise<void> {
  const contexts = [options.source, ...options.destinations];
  if (options.destinations.length === 0)
    throw new UsageError("--destination-context: at least one is required");
  if (new Set(contexts).size !== contexts.length) throw new UsageError("a context is listed twice");
  const peers = await readPeers(contexts, kcFor, options.timeoutMs ?? 15_000, options.kubeconfig);
  const problems = connectProblems(
    peers.map((p) => p.access),
    options.allowMismatchingCa,
  );
  if (problems.length) throw new UsageError(problems.join("\n"));

  const byContext = new Map(peers.map((p) => [p.access.context, p]));
  // Each cluster's relay address is read once, not once per pair (a full mesh of n has n·(n-1) pairs).
  const relays = new Map(
    await Promise.all(
      peers.map(async (p) => [p.access.context, await readRelayMeshEndpoint(p.core)] as const),
    ),
  );
  // One write of the remotes Secret per cluster with all its new remotes, every cluster at once: the
  // agents see one change each instead of one per remote, and a mesh of n costs n writes, not n².
  const grouped = groupBySource(connectionPairs(options.source, options.destinations, options.mode));
  await Promise.all(
    [...grouped].map(async ([fromContext, toContexts]) => {
      const from = byContext.get(fromContext) as Peer;
      const tos = toContexts.map((context) => byContext.get(context) as Peer);
      await updateRemotes(from.core, (data) => {
        for (const to of tos) {
          const sharedCa = sameCa(from.access.caPem, to.access.caPem);
          data[to.access.clusterName] = b64(
            renderRemoteClusterConfig({
              name: to.access.clusterName,
              endpoints: to.access.endpoints,
              trustedCaFile: sharedCa ? COMMON_CLIENT.ca : remoteCaKey(to.access.clusterName),
              certFile: COMMON_CLIENT.cert,
              keyFile: COMMON_CLIENT.key,
            }),
          );
          if (sharedCa) delete data[remoteCaKey(to.access.clusterName)];
          else data[remoteCaKey(to.access.clusterName)] = b64(to.access.caPem);
        }
      });
      // the Hubble relays merge each other over mutual TLS checked against each one's own CA
      const relayPeers = tos.flatMap((to) => {
        const relay = relays.get(to.access.context);
        if (relay && sameCa(from.access.caPem, to.access.caPem)) return [[to.access.clusterName, relay]];
        if (relay)
          options.progress(
            `Hubble relay of ${from.access.clusterName} does not merge ${to.access.clusterName}'s: their CAs differ`,
          );
        return [];
      });
      if (relayPeers.length)
        await updateRelayPeers(from.core, (data) => {
          for (const [name, relay] of relayPeers) data[name] = relay;
        });
    }),
  );
  const arrow = options.mode === "unicast" ? "=>" : "<=>";
  const names = peers.map((p) => p.access.clusterName);
  if (options.mode === "mesh") options.progress(`Connected clusters ${names.join(", ")} with each other`);
  else for (const name of names.slice(1)) options.progress(`Connected cluster ${names[0]} ${arrow} ${name}!`);
}

export async function disconnectClusters(
  kcFor: (context: string) => KubeConfig,
  options: Omit<ConnectOptions, "allowMismatchingCa">,
): Promise<void> {
  const contexts = [options.source, ...options.destinations];
  const peers = await readPeers(contexts, kcFor, options.timeoutMs ?? 15_000, options.kubeconfig);
  const byContext = new Map(peers.map((p) => [p.access.context, p]));
  // as connect: one write per cluster with all the remotes it drops, every cluster at once
  const grouped = groupBySource(connectionPairs(options.source, options.destinations, options.mode));
  await Promise.all(
    [...grouped].map(async ([fromContext, toContexts]) => {
      const from = byContext.get(fromContext) as Peer;
      const names = toContexts.map((context) => (byContext.get(context) as Peer).access.clusterName);
      try {
        await updateRemotes(from.core, (data) => {
          for (const name of names) {
            delete data[name];
            delete data[remoteCaKey(name)];
          }
        });
        await updateRelayPeers(from.core, (data) => {
          for (const name of names) delete data[name];
        });
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      for (const name of names) options.progress(`Disconnected ${from.access.clusterName} from ${name}`);
    }),
  );
}
