/**
 * Cluster-wide identity allocation through MeshIdentity objects (name = numeric id). Every agent
 * probes the same deterministic candidate ids for a label set (candidateIdentity) and claims one
 * with create-if-absent; a 409 means someone else holds that id, and reading it says whether it is
 * ours (same labels: use it) or a collision (different labels: try the next candidate). So
 * concurrent agents converge on one id per label set. Identities are never deleted by the agent
 * (no GC yet), which keeps "first free candidate" stable.
 */

import { MESH_API_VERSION, type MeshIdentity } from "../../lib/api/crds.js";
import type { Logger } from "../../lib/log.js";
import type { MeshIdentityStore } from "../k8s/mesh-api.js";
import {
  candidateIdentity,
  checkIdentityKey,
  clusterIdOf,
  IDENTITIES_PER_CLUSTER,
  identityKey,
  type SecurityLabels,
} from "./labels.js";

export class IdentityExhaustedError extends Error {}

export interface KnownIdentities {
  /** The MeshIdentity objects the agent's informer holds (may lag the API). */
  list(): readonly MeshIdentity[];
  get(name: string): MeshIdentity | undefined;
}

export function keyOfIdentityObject(identity: MeshIdentity): string {
  return identityKey(new Map(Object.entries(identity["security-labels"] ?? {})));
}

export class IdentityAllocator {
  /** key -> id resolved by this agent (ids are never freed, so this stays true) */
  private readonly resolved = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<number>>();

  constructor(
    private readonly store: MeshIdentityStore,
    private readonly known: KnownIdentities,
    private readonly clusterId: number,
    private readonly log: Logger,
  ) {}

  async resolve(labels: SecurityLabels): Promise<number> {
    const key = identityKey(labels);
    checkIdentityKey(key);
    const cached = this.resolved.get(key) ?? this.lookupKnown(key);
    if (cached !== undefined) return cached;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.allocate(key, labels).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  /** Lowest id of this cluster the informer already holds for key. */
  private lookupKnown(key: string): number | undefined {
    let found: number | undefined;
    for (const identity of this.known.list()) {
      const id = Number(identity.metadata.name);
      if (clusterIdOf(id) !== this.clusterId || keyOfIdentityObject(identity) !== key) continue;
      if (found === undefined || id < found) found = id;
    }
    if (found !== undefined) this.resolved.set(key, found);
    return found;
  }

  private async allocate(key: string, labels: SecurityLabels): Promise<number> {
    for (let attempt = 0; attempt < IDENTITIES_PER_CLUSTER; attempt++) {
      const id = candidateIdentity(key, this.clusterId, attempt);
      const name = String(id);
      let holder = this.known.get(name);
      if (!holder) {
        const body: MeshIdentity = {
          apiVersion: MESH_API_VERSION,
          kind: "MeshIdentity",
          metadata: { name },
          "security-labels": Object.fromEntries(labels),
        };
        if ((await this.store.create(body)) === "created") {
          this.log.info({ identity: id, labels: key }, "allocated identity");
          this.resolved.set(key, id);
          return id;
        }
        holder = await this.store.get(name);
        if (!holder) {
          attempt--; // deleted between our create and get: try the same id again
          continue;
        }
      }
      if (keyOfIdentityObject(holder) === key) {
        this.resolved.set(key, id);
        return id;
      }
    }
    throw new IdentityExhaustedError(`cluster ${this.clusterId} has no free identity`);
  }
}
