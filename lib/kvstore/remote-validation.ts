/**
 * Validators for entries read from a remote cluster's etcd — untrusted input. Each decodes the
 * value (types, IPs, CIDRs) and then checks it against the key it was found under and the remote
 * cluster it came from; any failure is an InvalidEntryError naming the key and the problem.
 * Pure: the watch store calls these for every upsert.
 */
import {
  clusterIdOfIdentity,
  identityBelongsTo,
  identityRange,
  type MaxConnectedClusters,
  RESERVED_IDENTITY_LIMIT,
} from "./cluster-identity.js";
import { InvalidEntryError } from "./errors.js";
import {
  CLUSTER_LABEL_KEY,
  K8S_SOURCE,
  type Label,
  parseIdentityId,
  parseLabels,
} from "./values/identity.js";
import { decodeIpIdentityPair, type IPIdentityPair, ipPairKeySuffix } from "./values/ipcache.js";
import { decodeNode, type NodeValue } from "./values/node.js";
import { type ClusterService, decodeService } from "./values/service.js";

/** The remote cluster every entry read from its etcd must come from (name, id and id range). */
export interface ExpectedCluster {
  name: string;
  id: number;
  maxConnectedClusters?: MaxConnectedClusters;
}

/** A decoder for one kind: full key, the key relative to the watched prefix, raw value. */
export type EntryDecoder<T> = (key: string, suffix: string, raw: Buffer | string) => T;

function expectClusterName(key: string, field: string, actual: string, remote: ExpectedCluster): void {
  if (actual === "") throw new InvalidEntryError(key, "missing-field", `${field} is empty`);
  if (actual !== remote.name) {
    throw new InvalidEntryError(
      key,
      "cluster-mismatch",
      `${field} "${actual}" is not the remote cluster "${remote.name}"`,
    );
  }
}

function expectClusterId(key: string, field: string, actual: number, remote: ExpectedCluster): void {
  if (actual !== remote.id) {
    throw new InvalidEntryError(
      key,
      "cluster-id-mismatch",
      `${field} ${actual} is not the remote cluster's id ${remote.id}`,
    );
  }
}

function expectIdentityOf(key: string, id: number, remote: ExpectedCluster, allowReserved: boolean): void {
  if (allowReserved && id < RESERVED_IDENTITY_LIMIT) return;
  if (!identityBelongsTo(id, remote.id, remote.maxConnectedClusters)) {
    const { first, last } = identityRange(remote.id, remote.maxConnectedClusters);
    throw new InvalidEntryError(
      key,
      "identity-out-of-range",
      `identity ${id} (cluster id ${clusterIdOfIdentity(id, remote.maxConnectedClusters)}) is outside ${remote.name}'s range ${first}..${last}`,
    );
  }
}

/** Node under `cilium/state/nodes/v1/<remote>/`; suffix = node name. */
export function remoteNodeDecoder(remote: ExpectedCluster): EntryDecoder<NodeValue> {
  return (key, suffix, raw) => {
    if (suffix === "" || suffix.includes("/"))
      throw new InvalidEntryError(key, "bad-key", `"${suffix}" is not a node name`);
    const node = decodeNode(key, raw);
    expectClusterName(key, "Cluster", node.Cluster, remote);
    expectClusterId(key, "ClusterID", node.ClusterID, remote);
    if (node.Name !== suffix) {
      throw new InvalidEntryError(
        key,
        "key-mismatch",
        `Name "${node.Name}" does not match the key's node "${suffix}"`,
      );
    }
    return node;
  };
}

/** Service under `cilium/state/services/v1/<remote>/`; suffix = "<namespace>/<name>". */
export function remoteServiceDecoder(remote: ExpectedCluster): EntryDecoder<ClusterService> {
  const namespaces = new StringPool();
  return (key, suffix, raw) => {
    const parts = suffix.split("/");
    if (parts.length !== 2 || parts.some((p) => p === "")) {
      throw new InvalidEntryError(key, "bad-key", `"${suffix}" is not <namespace>/<name>`);
    }
    const service = decodeService(key, raw);
    expectClusterName(key, "cluster", service.cluster, remote);
    expectClusterId(key, "clusterID", service.clusterID, remote);
    if (service.namespace === "" || service.name === "") {
      throw new InvalidEntryError(key, "missing-field", "namespace or name is empty");
    }
    if (`${service.namespace}/${service.name}` !== suffix) {
      throw new InvalidEntryError(
        key,
        "key-mismatch",
        `namespace/name "${service.namespace}/${service.name}" does not match the key's "${suffix}"`,
      );
    }
    // equal strings shared (checked above): one cluster name, few namespaces, for 10k services
    service.cluster = remote.name;
    service.namespace = namespaces.intern(service.namespace);
    return service;
  };
}

export interface RemoteIdentity {
  id: number;
  labels: Label[];
}

/** Identity under `cilium/state/identities/v1/id/`; suffix = numeric id. */
export function remoteIdentityDecoder(remote: ExpectedCluster): EntryDecoder<RemoteIdentity> {
  return (key, suffix, raw) => {
    const id = parseIdentityId(key, suffix);
    expectIdentityOf(key, id, remote, false);
    const labels = parseLabels(key, raw);
    const clusterLabels = labels.filter((l) => l.key === CLUSTER_LABEL_KEY);
    if (clusterLabels.length !== 1 || clusterLabels[0].source !== K8S_SOURCE) {
      throw new InvalidEntryError(
        key,
        "bad-labels",
        `needs exactly one ${K8S_SOURCE}:${CLUSTER_LABEL_KEY} label`,
      );
    }
    expectClusterName(key, CLUSTER_LABEL_KEY, clusterLabels[0].value, remote);
    return { id, labels };
  };
}

/** ipcache entry under `cilium/state/ip/v1/default/`; suffix = PrefixString of the value. */
export function remoteIpDecoder(remote: ExpectedCluster): EntryDecoder<IPIdentityPair> {
  const hostIps = new StringPool();
  return (key, suffix, raw) => {
    const pair = decodeIpIdentityPair(key, raw);
    if (ipPairKeySuffix(pair) !== suffix) {
      throw new InvalidEntryError(
        key,
        "key-mismatch",
        `value is for "${ipPairKeySuffix(pair)}", key says "${suffix}"`,
      );
    }
    // Reserved identities (< 256, e.g. host) are the same in every cluster and allowed (Cilium's
    // WithIdentityValidator); everything else must be the remote's own.
    expectIdentityOf(key, pair.ID, remote, true);
    // Strings equal to ones already held are shared (the watch store keeps the key suffix; a
    // remote has few node IPs): ~20% of a decoded entry at 50k endpoints.
    if (pair.prefixLength === null) pair.IP = suffix;
    if (pair.HostIP !== "") pair.HostIP = hostIps.intern(pair.HostIP);
    return pair;
  };
}

/**
 * Hands out one string object per distinct value (node IPs repeat across every endpoint of a
 * node). Bounded: a remote publishing more distinct values than `limit` only loses the sharing.
 */
export class StringPool {
  private readonly pool = new Map<string, string>();

  constructor(private readonly limit = 65_536) {}

  intern(value: string): string {
    const known = this.pool.get(value);
    if (known !== undefined) return known;
    if (this.pool.size >= this.limit) this.pool.clear();
    this.pool.set(value, value);
    return value;
  }
}
