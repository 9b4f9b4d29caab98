/**
 * Policy slots: the number an endpoint's cm_policy keys carry (endpoint_info.flags holds it), one
 * per endpoint, 1..1023, stable for the endpoint's life and adopted across an agent restart.
 */
import { EndpointPolicyFlags } from "../../bpf/datapath/policy-codecs.js";

export class PolicySlotsExhausted extends Error {
  constructor(readonly endpoint: string) {
    super(
      `no free policy slot for endpoint ${endpoint} (at most ${EndpointPolicyFlags.maxPolicyId} per node)`,
    );
  }
}

export class PolicySlots {
  private readonly byEndpoint = new Map<string, number>();
  private readonly used = new Set<number>();

  /** The slot a previous run gave the endpoint (read back from its cm_endpoints flags). */
  adopt(endpoint: string, slot: number): boolean {
    if (
      slot < 1 ||
      slot > EndpointPolicyFlags.maxPolicyId ||
      this.used.has(slot) ||
      this.byEndpoint.has(endpoint)
    )
      return false;
    this.byEndpoint.set(endpoint, slot);
    this.used.add(slot);
    return true;
  }

  get(endpoint: string): number | undefined {
    return this.byEndpoint.get(endpoint);
  }

  acquire(endpoint: string): number {
    const existing = this.byEndpoint.get(endpoint);
    if (existing !== undefined) return existing;
    for (let slot = 1; slot <= EndpointPolicyFlags.maxPolicyId; slot++) {
      if (!this.used.has(slot)) {
        this.adopt(endpoint, slot);
        return slot;
      }
    }
    throw new PolicySlotsExhausted(endpoint);
  }

  release(endpoint: string): number | undefined {
    const slot = this.byEndpoint.get(endpoint);
    if (slot === undefined) return undefined;
    this.byEndpoint.delete(endpoint);
    this.used.delete(slot);
    return slot;
  }

  entries(): Array<[string, number]> {
    return [...this.byEndpoint];
  }
}

/** The slot in an endpoint_info.flags value (0: none). */
export function slotOfFlags(flags: number): number {
  return (flags >>> EndpointPolicyFlags.policyIdShift) & EndpointPolicyFlags.maxPolicyId;
}
