/**
 * The agent's policy applier: folds the resolver's per-endpoint deltas (lib/policy/types.ts) into
 * each endpoint's policy, writes the key-level changes to cm_policy (plan.ts decides them), keeps
 * the endpoint flags the datapath loop puts into cm_endpoints, makes the datapath judge again the
 * connections of an endpoint whose policy narrowed (a revision bump per slot, no conntrack scan),
 * and answers the status (enforced directions, drops by direction and rule). A policy the datapath cannot take (a bad entry, a full
 * map) is reported and skipped: it never stops the agent.
 */
import { PolicyDir } from "../../bpf/datapath/policy-codecs.js";
import { type PolicyMapEntries, policyMapKeyString } from "../../bpf/datapath/policy-entries.js";
import type { PolicyDropCount, PolicyMaps } from "../../bpf/datapath/policy-maps.js";
import type { EndpointPolicyStatus } from "../../lib/api/agent-status.js";
import type { Logger } from "../../lib/log.js";
import type { EndpointPolicy, EndpointPolicyDelta, PolicyRuleRef } from "../../lib/policy/types.js";
import { applyDelta, type EndpointPolicyState, stateOf, UNENFORCED } from "./endpoint-state.js";
import { planEndpointPolicy } from "./plan.js";
import { RuleNumbers } from "./rule-numbers.js";
import { PolicySlots, slotOfFlags } from "./slots.js";

/** The map operations the controller needs (PolicyMaps; a fake in unit tests). */
export type PolicyMapsIo = Pick<
  PolicyMaps,
  "write" | "entries" | "readDrops" | "clearDrops" | "bumpRevisions"
>;

export interface PolicyControllerDeps {
  maps: PolicyMapsIo;
  /** an endpoint's flags changed: the datapath loop must write cm_endpoints */
  onFlagsChanged: () => void;
  log: Logger;
}

export class PolicyController {
  private readonly states = new Map<string, EndpointPolicyState>();
  private readonly written = new Map<string, { entries: PolicyMapEntries; flags: number }>();
  /** endpoints whose last programming failed (their previous entries stay until a retry works) */
  private readonly failed = new Set<string>();
  /**
   * endpoints whose policy narrowed with their flags (a direction newly enforced), by the flags: the
   * datapath judges connections by the flags in cm_endpoints, so their slots' revisions are bumped
   * again once the datapath loop has written these flags (flagsWritten)
   */
  private readonly awaitingFlags = new Map<string, number>();
  private readonly slots = new PolicySlots();
  private readonly rules = new RuleNumbers();
  private readonly ruleNumber = (rule: PolicyRuleRef) => this.rules.number(rule);

  constructor(private readonly deps: PolicyControllerDeps) {}

  /**
   * After a restart: endpoints keep the slots their cm_endpoints flags name, and what a previous
   * run wrote for a slot is the base the first diff is taken against (so nothing is rewritten that
   * did not change); entries of slots no endpoint owns any more are deleted.
   */
  adopt(endpoints: ReadonlyArray<{ id: string; flags: number }>): void {
    const bySlot = new Map<number, PolicyMapEntries>();
    for (const [key, value] of this.deps.maps.entries()) {
      const entries = bySlot.get(key.policyId) ?? new Map();
      bySlot.set(key.policyId, entries);
      entries.set(policyMapKeyString(key), [key, value]);
    }
    for (const { id, flags } of endpoints) {
      const slot = slotOfFlags(flags);
      if (slot && this.slots.adopt(id, slot))
        this.written.set(id, { entries: bySlot.get(slot) ?? new Map(), flags });
    }
    const owned = new Set(this.slots.entries().map(([, slot]) => slot));
    for (const [slot, entries] of bySlot) {
      if (owned.has(slot)) continue;
      this.deps.maps.write(
        [],
        [...entries.values()].map(([key]) => key),
      );
      this.deps.maps.clearDrops(slot);
    }
  }

  /** The resolver's deltas, in order. */
  apply(deltas: readonly EndpointPolicyDelta[]): void {
    const touched = new Map<string, EndpointPolicyState>();
    for (const delta of deltas) {
      const base = touched.get(delta.endpoint) ?? this.states.get(delta.endpoint) ?? UNENFORCED;
      touched.set(delta.endpoint, applyDelta(base, delta));
    }
    this.program(touched);
  }

  /** The whole policy of every endpoint (a full resync); endpoints not named are unenforced. */
  replace(policies: readonly EndpointPolicy[]): void {
    const next = new Map(policies.map((policy) => [policy.endpoint, stateOf(policy)]));
    for (const endpoint of this.states.keys()) if (!next.has(endpoint)) next.set(endpoint, UNENFORCED);
    this.program(next);
  }

  /** Forgets endpoints that are gone: their entries, slot and counters. */
  retain(endpoints: ReadonlySet<string>): void {
    for (const endpoint of this.failed) if (!endpoints.has(endpoint)) this.failed.delete(endpoint);
    for (const [endpoint, slot] of this.slots.entries()) {
      if (endpoints.has(endpoint)) continue;
      const written = this.written.get(endpoint);
      try {
        if (written)
          this.deps.maps.write(
            [],
            [...written.entries.values()].map(([key]) => key),
          );
        this.deps.maps.clearDrops(slot);
        // the slot's next endpoint may get the address too: the connections recorded for this one
        // must not admit its traffic
        this.deps.maps.bumpRevisions([slot]);
      } catch (err) {
        this.deps.log.warn({ err, endpoint }, "policy: removing a gone endpoint's entries failed");
      }
      this.slots.release(endpoint);
      this.awaitingFlags.delete(endpoint);
      this.failed.delete(endpoint);
      this.written.delete(endpoint);
      this.states.delete(endpoint);
    }
  }

  /**
   * The datapath loop wrote these endpoints' flags to cm_endpoints: connections of the endpoints
   * whose narrowing changed their flags are judged again now that the datapath sees the new flags.
   */
  flagsWritten(written: ReadonlyMap<string, number>): void {
    const slots: number[] = [];
    for (const [endpoint, flags] of this.awaitingFlags) {
      if (written.get(endpoint) !== flags) continue;
      this.awaitingFlags.delete(endpoint);
      const slot = this.slots.get(endpoint);
      if (slot !== undefined) slots.push(slot);
    }
    this.bump(slots);
  }

  /** Whether the endpoint's policy, as last stated, is in the maps. */
  programmed(endpoint: string): boolean {
    return !this.failed.has(endpoint);
  }

  /** EP_F_* bits for the endpoint's cm_endpoints entry (0: not enforced). */
  flagsOf(endpoint: string): number {
    return this.written.get(endpoint)?.flags ?? 0;
  }

  status(
    endpoint: string,
    drops: readonly PolicyDropCount[] = this.deps.maps.readDrops(),
  ): EndpointPolicyStatus {
    const state = this.states.get(endpoint) ?? UNENFORCED;
    const slot = this.slots.get(endpoint);
    const peers = new Set([...state.entries.values()].map(([key]) => key.identity));
    const out: EndpointPolicyStatus = {
      ...state.enforced,
      drops: { ingress: 0, egress: 0 },
      entries: state.entries.size,
      peers: [...peers].sort((a, b) => a - b),
      dropsByRule: [],
    };
    for (const drop of drops) {
      if (drop.policyId !== slot) continue;
      const direction = drop.direction === PolicyDir.ingress ? "ingress" : "egress";
      const packets = Number(drop.packets);
      out.drops[direction] += packets;
      const rule = this.rules.rule(drop.rule);
      out.dropsByRule.push({
        direction,
        rule: rule
          ? `${rule.kind}/${rule.namespace ? `${rule.namespace}/` : ""}${rule.name}#${rule.index}`
          : "default-deny",
        packets,
      });
    }
    return out;
  }

  private program(next: ReadonlyMap<string, EndpointPolicyState>): void {
    let flagsChanged = false;
    const narrowed: number[] = [];
    for (const [endpoint, state] of next) {
      // deny entries act in an unenforced direction too (a policy without default deny)
      const active =
        state.enforced.ingress ||
        state.enforced.egress ||
        [...state.entries.values()].some(([, value]) => value.verdict === "deny");
      this.states.set(endpoint, state);
      const previous = this.written.get(endpoint);
      if (!active && !previous) {
        this.failed.delete(endpoint);
        continue;
      }
      try {
        const slot = this.slots.acquire(endpoint);
        const plan = planEndpointPolicy(previous, state, slot, this.ruleNumber);
        for (const rejected of plan.flattened.rejected)
          this.deps.log.warn({ endpoint, ...rejected }, "policy: entry refused by the datapath");
        this.deps.maps.write(plan.upserts, plan.deletes);
        this.written.set(endpoint, { entries: plan.flattened.entries, flags: plan.flattened.flags });
        const flagsDiffer = (previous?.flags ?? 0) !== plan.flattened.flags;
        if (flagsDiffer) flagsChanged = true;
        if (plan.narrows) {
          narrowed.push(slot);
          if (flagsDiffer) this.awaitingFlags.set(endpoint, plan.flattened.flags);
        }
        this.failed.delete(endpoint);
      } catch (err) {
        this.failed.add(endpoint);
        // the previous entries stay (the map may hold part of the new ones); the next resync retries
        this.deps.log.error({ err, endpoint }, "policy: programming the endpoint's policy failed");
      }
    }
    // after the writes: a packet judged again in between must already see the narrowed entries
    this.bump(narrowed);
    if (flagsChanged) this.deps.onFlagsChanged();
  }

  private bump(slots: readonly number[]): void {
    if (slots.length === 0) return;
    try {
      this.deps.maps.bumpRevisions(slots);
    } catch (err) {
      this.deps.log.warn({ err, slots }, "policy: bumping the policy revisions failed");
    }
  }
}
