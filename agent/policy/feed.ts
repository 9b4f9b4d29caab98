/**
 * Level-triggered input to the incremental resolver (lib/policy/resolver.ts): each sync hands the
 * whole current set of policies, identities and local endpoints; the feed compares it with what it
 * fed before and passes the resolver only what changed (new, changed, gone), so a sync after one
 * remote identity changed costs one resolver call and a delta for the endpoints it matters to.
 * An invalid policy is reported with its fields and not fed; a previously valid version of it
 * stays in force (an edit that breaks a policy does not open what it closed). No I/O.
 */
import type { PolicyFieldError } from "../../lib/policy/errors.js";
import {
  hasEgressNamedPorts,
  type NamedPort,
  NamedPortIndex,
  resolveEgressNamedPorts,
} from "../../lib/policy/named-ports.js";
import { parsePolicy } from "../../lib/policy/parse.js";
import type { EndpointInput, IdentityInput, PolicyResolver } from "../../lib/policy/resolver.js";
import { type PolicyCondition, policyCondition } from "../../lib/policy/status.js";
import type { EndpointPolicyDelta, PolicyKind } from "../../lib/policy/types.js";

export interface PolicyObject {
  kind: PolicyKind;
  namespace?: string;
  name: string;
  /** changes whenever the object does (metadata.resourceVersion) */
  version: string;
  object: unknown;
}

export interface PolicySnapshot {
  policies: readonly PolicyObject[];
  /** every identity policies may select: this cluster's and the connected remote clusters' */
  identities: readonly IdentityInput[];
  endpoints: readonly EndpointInput[];
  /** the container ports of the cluster's pods, by name: what egress rules' named ports resolve to */
  namedPorts?: readonly NamedPort[];
}

export interface InvalidPolicy {
  policy: string;
  errors: PolicyFieldError[];
}

export interface FeedResult {
  deltas: EndpointPolicyDelta[];
  /** every policy that is invalid now (also those reported by earlier syncs) */
  invalid: InvalidPolicy[];
  /** every current policy's Valid condition (lib/policy/status.ts), with the object it is about */
  conditions: Array<{ policy: PolicyObject; condition: PolicyCondition }>;
}

const policyName = (p: { kind: PolicyKind; namespace?: string; name: string }) =>
  `${p.kind}/${p.namespace ? `${p.namespace}/` : ""}${p.name}`;
const identitySignature = (identity: IdentityInput) =>
  `${identity.cluster}|${[...identity.labels].sort().join(";")}`;
const endpointSignature = (endpoint: EndpointInput) =>
  JSON.stringify([
    endpoint.identity,
    [...endpoint.labels].sort(),
    endpoint.namespace,
    endpoint.namedPorts ?? [],
  ]);

export class PolicyFeed {
  private readonly policies = new Map<
    string,
    {
      version: string;
      ref: PolicyObject;
      fed: boolean;
      condition?: PolicyCondition;
      /** the named-port index its egress named ports were resolved against (absent: it has none) */
      namedPorts?: string;
    }
  >();
  private readonly invalid = new Map<string, InvalidPolicy>();
  private readonly identities = new Map<number, string>();
  private readonly endpoints = new Map<string, string>();

  constructor(
    private readonly resolver: PolicyResolver,
    private readonly clusterName: string,
  ) {}

  sync(snapshot: PolicySnapshot): FeedResult {
    const deltas: EndpointPolicyDelta[] = [];
    const add = (more: EndpointPolicyDelta[]) => {
      for (const delta of more) deltas.push(delta);
    };

    // identities first: policies and endpoints fed below then see them
    const identities = new Map(snapshot.identities.map((identity) => [identity.id, identity]));
    const changed = [...identities.values()].filter(
      (identity) => this.identities.get(identity.id) !== identitySignature(identity),
    );
    if (changed.length > 0) add(this.resolver.upsertIdentities(changed));
    for (const identity of changed) this.identities.set(identity.id, identitySignature(identity));

    const endpoints = new Map(snapshot.endpoints.map((endpoint) => [endpoint.id, endpoint]));
    for (const endpoint of endpoints.values()) {
      const signature = endpointSignature(endpoint);
      if (this.endpoints.get(endpoint.id) === signature) continue;
      add(this.resolver.upsertEndpoint(endpoint));
      this.endpoints.set(endpoint.id, signature);
    }

    const policies = new Map(snapshot.policies.map((policy) => [policyName(policy), policy]));
    const namedPorts = NamedPortIndex.of(snapshot.namedPorts ?? []);
    for (const [name, policy] of policies) {
      const known = this.policies.get(name);
      // a policy with egress named ports is fed again when the pods' named ports change
      if (
        known?.version === policy.version &&
        (known.namedPorts === undefined || known.namedPorts === namedPorts.signature)
      )
        continue;
      const fedBefore = this.policies.get(name)?.fed ?? false;
      try {
        const result = parsePolicy(policy.object, { clusterName: this.clusterName });
        if (!result.policy || result.errors.list.length > 0) {
          this.invalid.set(name, { policy: name, errors: result.errors.list });
          const condition = policyCondition(result);
          this.policies.set(name, { version: policy.version, ref: policy, fed: fedBefore, condition });
          continue;
        }
        const named = hasEgressNamedPorts(result.policy);
        const parsed = named ? resolveEgressNamedPorts(result.policy, namedPorts) : result.policy;
        add(this.resolver.upsertPolicy(parsed));
        this.invalid.delete(name);
        this.policies.set(name, {
          version: policy.version,
          ref: policy,
          fed: true,
          condition: policyCondition({ ...result, policy: parsed }),
          ...(named ? { namedPorts: namedPorts.signature } : {}),
        });
      } catch (error) {
        // a parser or resolver bug on some input must not stop the agent: the policy is reported
        const message = (error as Error).message;
        this.invalid.set(name, { policy: name, errors: [{ path: "", message }] });
        const condition: PolicyCondition = {
          type: "Valid",
          status: "False",
          reason: "InvalidPolicy",
          message: `not enforced: ${message}`,
        };
        this.policies.set(name, { version: policy.version, ref: policy, fed: fedBefore, condition });
      }
    }

    for (const [name, { ref, fed }] of this.policies) {
      if (policies.has(name)) continue;
      if (fed) add(this.resolver.deletePolicy(ref));
      this.policies.delete(name);
      this.invalid.delete(name);
    }
    for (const id of this.endpoints.keys()) {
      if (endpoints.has(id)) continue;
      add(this.resolver.deleteEndpoint(id));
      this.endpoints.delete(id);
    }
    const gone = [...this.identities.keys()].filter((id) => !identities.has(id));
    if (gone.length > 0) add(this.resolver.deleteIdentities(gone));
    for (const id of gone) this.identities.delete(id);

    const conditions = [...this.policies.values()].flatMap(({ ref, condition }) =>
      condition ? [{ policy: ref, condition }] : [],
    );
    return { deltas, invalid: [...this.invalid.values()], conditions };
  }
}
