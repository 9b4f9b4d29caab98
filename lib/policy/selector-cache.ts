/**
 * The identities the resolver knows and, for every distinct peer selector in use, the set of those
 * it selects (Cilium's SelectorCache, https://github.com/cilium/cilium/blob/main/pkg/policy/selectorcache.go).
 * Selectors are indexed by the cluster they are restricted to, so an identity of a remote cluster
 * that no selector names is tested against the few selectors that admit any cluster, not all of them:
 * a remote cluster's 10k identities that nothing selects cost 10k map lookups. Pure.
 */
import { type Cidr, parseCidr } from "../cidr.js";
import { RESERVED_IDENTITY, RESERVED_SOURCE } from "../identity/labels.js";
import { CLUSTER_KEY } from "./peers.js";
import type { PeerSelector } from "./rules.js";
import { type LabelSelector, selectorKey, selectorMatches } from "./selector.js";

export interface KnownIdentity {
  id: number;
  /** security labels with sources (`k8s:app` → `x`); the cluster label is the cluster it came from */
  labels: Map<string, string>;
  /** the cluster it belongs to; undefined for reserved and CIDR identities */
  cluster?: string;
  /** set for CIDR identities */
  cidr?: Cidr;
}

/** Reserved identities and their labels (`reserved:host`, …), as Cilium labels them. */
export const RESERVED_LABELS: Record<number, string> = {
  [RESERVED_IDENTITY.host]: "host",
  [RESERVED_IDENTITY.world]: "world",
  [RESERVED_IDENTITY.unmanaged]: "unmanaged",
  [RESERVED_IDENTITY.health]: "health",
  [RESERVED_IDENTITY.init]: "init",
  [RESERVED_IDENTITY.remoteNode]: "remote-node",
  [RESERVED_IDENTITY.kubeApiserver]: "kube-apiserver",
};

export class CachedSelector<User> {
  readonly ids = new Set<number>();
  readonly users = new Set<User>();
  constructor(
    readonly key: string,
    readonly matches: (identity: KnownIdentity) => boolean,
    /** index buckets the selector sits in (see bucketsOf) */
    readonly buckets: string[],
  ) {}
}

const ANY = "*any";
const ANY_CLUSTER = "*cluster";
const NO_CLUSTER = "*none";

function contains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefixLength < outer.prefixLength) return false;
  const bits = outer.family === 4 ? 32 : 128;
  const shift = BigInt(bits - outer.prefixLength);
  return inner.network >> shift === outer.network >> shift;
}

/** Which buckets a label selector must sit in to see every identity it can match. */
function labelBuckets(selector: LabelSelector): string[] {
  const cluster = selector.requirements.find((r) => r.key === CLUSTER_KEY);
  if (
    selector.requirements.some(
      (r) =>
        r.key.startsWith(`${RESERVED_SOURCE}:`) && r.operator !== "DoesNotExist" && r.operator !== "NotIn",
    )
  )
    return [NO_CLUSTER];
  if (cluster?.operator === "In") return cluster.values.map((c) => `c:${c}`);
  if (cluster?.operator === "Exists") return [ANY_CLUSTER];
  return [ANY];
}

export class SelectorCache<User> {
  private readonly identities = new Map<number, KnownIdentity>();
  /** the same identities by cluster (undefined: reserved and CIDR), so a new selector reads only its buckets' */
  private readonly byCluster = new Map<string | undefined, Map<number, KnownIdentity>>();
  private readonly selectors = new Map<string, CachedSelector<User>>();
  private readonly buckets = new Map<string, Set<CachedSelector<User>>>();

  getIdentity(id: number): KnownIdentity | undefined {
    return this.identities.get(id);
  }

  addIdentity(identity: KnownIdentity): void {
    this.identities.set(identity.id, identity);
    let cluster = this.byCluster.get(identity.cluster);
    if (!cluster) {
      cluster = new Map();
      this.byCluster.set(identity.cluster, cluster);
    }
    cluster.set(identity.id, identity);
  }

  removeIdentity(identity: KnownIdentity): void {
    this.identities.delete(identity.id);
    this.byCluster.get(identity.cluster)?.delete(identity.id);
  }

  identitiesOf(cluster: string): KnownIdentity[] {
    return [...(this.byCluster.get(cluster)?.values() ?? [])];
  }

  /** The identities a selector in these buckets can match. */
  private *identitiesIn(buckets: string[]): Iterable<KnownIdentity> {
    if (buckets.includes(ANY)) {
      yield* this.identities.values();
      return;
    }
    for (const bucket of buckets) {
      if (bucket === NO_CLUSTER) yield* this.byCluster.get(undefined)?.values() ?? [];
      else if (bucket === ANY_CLUSTER) {
        for (const [cluster, identities] of this.byCluster)
          if (cluster !== undefined) yield* identities.values();
      } else yield* this.byCluster.get(bucket.slice(2))?.values() ?? [];
    }
  }

  /** Selectors that may match the identity (a superset: callers still test each). */
  *candidates(identity: KnownIdentity): Iterable<CachedSelector<User>> {
    const names =
      identity.cluster !== undefined ? [`c:${identity.cluster}`, ANY_CLUSTER, ANY] : [NO_CLUSTER, ANY];
    for (const name of names) {
      const bucket = this.buckets.get(name);
      if (bucket) yield* bucket;
    }
  }

  /** The cached selector for a peer, created (and filled from the known identities) when new. */
  acquire(peer: PeerSelector, user: User): CachedSelector<User> {
    const key =
      peer.type === "labels"
        ? `labels:${selectorKey(peer.selector)}`
        : `cidr:${peer.prefix}!${peer.except.join(",")}`;
    let selector = this.selectors.get(key);
    if (!selector) {
      if (peer.type === "labels") {
        const labels = peer.selector;
        selector = new CachedSelector<User>(
          key,
          (identity) => selectorMatches(labels, identity.labels),
          labelBuckets(labels),
        );
      } else {
        const prefix = parseCidr(peer.prefix);
        const excepts = peer.except.map((e) => parseCidr(e));
        const matches = (identity: KnownIdentity) =>
          identity.cidr
            ? contains(prefix, identity.cidr) && !excepts.some((e) => contains(e, identity.cidr as Cidr))
            : prefix.prefixLength === 0 && identity.id === RESERVED_IDENTITY.world;
        // a /0 is the world identity itself (Cilium maps 0.0.0.0/0 to reserved:world)
        selector = new CachedSelector<User>(key, matches, [NO_CLUSTER]);
      }
      this.selectors.set(key, selector);
      for (const name of selector.buckets) {
        let bucket = this.buckets.get(name);
        if (!bucket) {
          bucket = new Set();
          this.buckets.set(name, bucket);
        }
        bucket.add(selector);
      }
      for (const identity of this.identitiesIn(selector.buckets))
        if (selector.matches(identity)) selector.ids.add(identity.id);
    }
    selector.users.add(user);
    return selector;
  }

  /** Drops a user; the last one's release removes the selector. */
  release(selector: CachedSelector<User>, user: User): void {
    selector.users.delete(user);
    if (selector.users.size > 0) return;
    this.selectors.delete(selector.key);
    for (const name of selector.buckets) this.buckets.get(name)?.delete(selector);
  }
}
