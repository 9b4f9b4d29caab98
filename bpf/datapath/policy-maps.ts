/**
 * The network policy maps of a node's datapath (bpf/include/dp_policy.h), opened from their pins:
 * cm_policy (verdicts), cm_policy_ct (allowed connections), cm_policy_drops (denials per rule),
 * cm_policy_rev (each endpoint slot's policy revision).
 * Thin I/O: what to write comes from policy-entries.ts.
 */
import { join } from "node:path";
import { BpfMap, u32Codec, u64Codec } from "../libbpf-ts/index.js";
import { type CtKey, ctKeyCodec } from "./codecs.js";
import { mapsDirectory } from "./maps.js";
import {
  POLICY_REVISION_MASK,
  type PolicyCtEntry,
  type PolicyDirCode,
  type PolicyDropKey,
  type PolicyMapEntry,
  type PolicyMapKey,
  policyCtEntryCodec,
  policyDropKeyCodec,
  policyEntryCodec,
  policyKeyCodec,
} from "./policy-codecs.js";

export const PolicyMapName = {
  policy: "cm_policy",
  conntrack: "cm_policy_ct",
  drops: "cm_policy_drops",
  revisions: "cm_policy_rev",
} as const;

export interface PolicyDropCount extends PolicyDropKey {
  packets: bigint;
}

export class PolicyMaps {
  private constructor(
    readonly policy: BpfMap<PolicyMapKey, PolicyMapEntry>,
    readonly conntrack: BpfMap<CtKey, PolicyCtEntry>,
    readonly drops: BpfMap<PolicyDropKey, bigint>,
    readonly revisions: BpfMap<number, number>,
  ) {}

  /** Opens the pins a loaded datapath created under pinRoot. */
  static open(pinRoot: string): PolicyMaps {
    const dir = mapsDirectory(pinRoot);
    const opened: Array<{ close(): void }> = [];
    try {
      const policy = BpfMap.openPinned(join(dir, PolicyMapName.policy), policyKeyCodec, policyEntryCodec);
      opened.push(policy);
      const conntrack = BpfMap.openPinned(join(dir, PolicyMapName.conntrack), ctKeyCodec, policyCtEntryCodec);
      opened.push(conntrack);
      const drops = BpfMap.openPinned(join(dir, PolicyMapName.drops), policyDropKeyCodec, u64Codec);
      opened.push(drops);
      const revisions = BpfMap.openPinned(join(dir, PolicyMapName.revisions), u32Codec, u32Codec);
      return new PolicyMaps(policy, conntrack, drops, revisions);
    } catch (error) {
      for (const map of opened) map.close();
      throw error;
    }
  }

  /** Writes upserts (batched), then deletes. */
  write(
    upserts: ReadonlyArray<readonly [PolicyMapKey, PolicyMapEntry]>,
    deletes: readonly PolicyMapKey[],
  ): void {
    this.policy.updateBatch(upserts);
    this.policy.deleteBatch(deletes);
  }

  /** Every cm_policy entry (restart: what a previous agent wrote). */
  entries(): Array<[PolicyMapKey, PolicyMapEntry]> {
    return [...this.policy.entries()];
  }

  /** Drop counters summed over CPUs. */
  readDrops(): PolicyDropCount[] {
    const out: PolicyDropCount[] = [];
    for (const key of [...this.drops.keys()]) {
      const perCpu = this.drops.getPerCpu(key);
      if (perCpu) out.push({ ...key, packets: perCpu.reduce((sum, value) => sum + value, 0n) });
    }
    return out;
  }

  /** Forgets a slot's drop counters (its endpoint is gone, the slot will be reused). */
  clearDrops(policyId: number, direction?: PolicyDirCode): void {
    for (const key of [...this.drops.keys()]) {
      if (key.policyId === policyId && (direction === undefined || key.direction === direction))
        this.drops.delete(key);
    }
  }

  /**
   * Makes the datapath judge again the connections these slots' policies allowed so far: bumps each
   * slot's revision, so that a packet finding an entry of an older one has its connection judged
   * against the policy as it is now (dp_policy.h). Call after writing the narrowed policy. Costs one
   * lookup and one update per slot, however many connections there are (what replaced a scan of
   * cm_policy_ct). Returns the new revisions.
   */
  bumpRevisions(slots: Iterable<number>): Map<number, number> {
    const bumped = new Map<number, number>();
    for (const slot of slots) {
      const revision = ((this.revisions.get(slot) ?? 0) + 1) & POLICY_REVISION_MASK;
      this.revisions.set(slot, revision);
      bumped.set(slot, revision);
    }
    return bumped;
  }

  close(): void {
    this.policy.close();
    this.conntrack.close();
    this.drops.close();
    this.revisions.close();
  }
}
