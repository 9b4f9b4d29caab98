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
  for (const [fromContext, toContext] of connectionPairs(
    options.source,
    options.destinations,
    options.mode,
  )) {
    const from = byContext.get(fromContext) as Peer;
    const to = byContext.get(toContext) as Peer;
    const sharedCa = sameCa(from.access.caPem, to.access.caPem);
    const changes = remoteConfigChanges(from.access, to.access);
    // the cache first: agents pointed at it wait for its canaries anyway
    await updateRemotes(from.core, MeshObjects.kvstoremesh, changes.kvstoremesh);
    await updateRemotes(from.core, MeshObjects.remotes, changes.agents);
    // the Hubble relays merge each other over mutual TLS checked against each one's own CA
    const relay = await readRelayMeshEndpoint(to.core);
    if (relay && sharedCa)
      await updateRelayPeers(from.core, (data) => {
        data[to.access.clusterName] = relay;
      });
    else if (relay)
      options.progress(
        `Hubble relay of ${from.access.clusterName} does not merge ${to.access.clusterName}'s: their CAs differ`,
      );
  }
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
  for (const [fromContext, toContext] of connectionPairs(
    options.source,
    options.destinations,
    options.mode,
  )) {
    const from = byContext.get(fromContext) as Peer;
    const to = byContext.get(toContext) as Peer;
    try {
      const gone = { [to.access.clusterName]: undefined, [remoteCaKey(to.access.clusterName)]: undefined };
      await updateRemotes(from.core, MeshObjects.remotes, gone);
      await updateRemotes(from.core, MeshObjects.kvstoremesh, gone);
      await updateRelayPeers(from.core, (data) => {
        delete data[to.access.clusterName];
      });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    options.progress(`Disconnected ${from.access.clusterName} from ${to.access.clusterName}`);
  }
}
