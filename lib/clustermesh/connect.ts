import type { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { MESH_NAMESPACE } from "../api/rbac.js";
import { apiErrorMessage, coreApi, isConflict, isNotFound, readSecret } from "../k8s/client.js";
import { UsageError } from "../usage-error.js";
import { type ClusterAccess, connectProblems, readClusterAccess, sameCa } from "./access.js";
import { readRelayMeshEndpoint, updateRelayPeers } from "./relay-peers.js";
import { COMMON_CLIENT, LOCAL_CLIENT, remoteCaKey, renderRemoteClusterConfig } from "./remote-config.js";
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

/** Secret key → text to write, or undefined to delete the key. */
export type SecretChanges = Record<string, string | undefined>;

/**
 * What `from` records to reach `to`, per Secret. Pure. Without KVStoreMesh the agents' remotes
 * Secret points at `to`'s etcd (with `to`'s CA unless the CA is shared). With KVStoreMesh that entry
 * goes to the clustermesh-apiserver's Secret instead, and the agents' entry for `to` points at
 * `from`'s own etcd with the local-etcd-client certificate (Cilium's kvstoremesh layout: the
 * agents never connect to another cluster).
 */
export function remoteConfigChanges(
  from: ClusterAccess,
  to: ClusterAccess,
): { agents: SecretChanges; kvstoremesh: SecretChanges } {
  const sharedCa = sameCa(from.caPem, to.caPem);
  const caKey = remoteCaKey(to.clusterName);
  const direct: SecretChanges = {
    [to.clusterName]: renderRemoteClusterConfig({
      name: to.clusterName,
      endpoints: to.endpoints,
      trustedCaFile: sharedCa ? COMMON_CLIENT.ca : caKey,
      certFile: COMMON_CLIENT.cert,
      keyFile: COMMON_CLIENT.key,
    }),
    [caKey]: sharedCa ? undefined : to.caPem,
  };
  const none: SecretChanges = { [to.clusterName]: undefined, [caKey]: undefined };
  if (!from.kvstoremesh) return { agents: direct, kvstoremesh: none };
  return {
    kvstoremesh: direct,
    agents: {
      [to.clusterName]: renderRemoteClusterConfig({
        name: to.clusterName,
        endpoints: from.endpoints,
        trustedCaFile: LOCAL_CLIENT.ca,
        certFile: LOCAL_CLIENT.cert,
        keyFile: LOCAL_CLIENT.key,
      }),
      [caKey]: undefined,
    },
  };
}

/**
 * Read-modify-write of a remotes Secret with optimistic concurrency: concurrent connects never lose
 * each other's entries. A missing Secret is created only if something is to be written.
 */
async function updateRemotes(core: CoreV1Api, name: string, changes: SecretChanges): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const secret = await readSecret(core, name);
    const data: Record<string, string> = { ...(secret?.data ?? {}) };
    for (const [key, value] of Object.entries(changes)) {
      if (value === undefined) delete data[key];
      else data[key] = b64(value);
    }
    try {
      if (secret) {
        await core.replaceNamespacedSecret({ name, namespace: MESH_NAMESPACE, body: { ...secret, data } });
      } else if (Object.values(changes).some((value) => value !== undefined)) {
        await core.createNamespacedSecret({
          namespace: MESH_NAMESPACE,
          body: { metadata: { name, namespace: MESH_NAMESPACE }, data },
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
  // One write of each Secret per cluster with all its new remotes, every cluster at once: the
  // agents see one change each instead of one per remote, and a mesh of n costs n writes, not n².
  const grouped = groupBySource(connectionPairs(options.source, options.destinations, options.mode));
  await Promise.all(
    [...grouped].map(async ([fromContext, toContexts]) => {
      const from = byContext.get(fromContext) as Peer;
      const tos = toContexts.map((context) => byContext.get(context) as Peer);
      const agents: SecretChanges = {};
      const kvstoremesh: SecretChanges = {};
      for (const to of tos) {
        const changes = remoteConfigChanges(from.access, to.access);
        Object.assign(agents, changes.agents);
        Object.assign(kvstoremesh, changes.kvstoremesh);
      }
      // the cache first: agents pointed at it wait for its canaries anyway
      await updateRemotes(from.core, MeshObjects.kvstoremesh, kvstoremesh);
      await updateRemotes(from.core, MeshObjects.remotes, agents);
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
        const gone: SecretChanges = {};
        for (const name of names) Object.assign(gone, { [name]: undefined, [remoteCaKey(name)]: undefined });
        await updateRemotes(from.core, MeshObjects.remotes, gone);
        await updateRemotes(from.core, MeshObjects.kvstoremesh, gone);
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
