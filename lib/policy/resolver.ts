/**
 * The incremental policy resolver: policies + identities + local endpoints → each local endpoint's
 * policy entries (lib/policy/types.ts), as key-level deltas. Pure: no I/O, no clock; the agent feeds
 * it from its informers and the remote clusters and applies the deltas to the BPF policy maps.
 *
 * Every change runs as one batch: contributions (endpoint, key, rule) are added and removed, the
 * first touch of a key records the value it had, and the batch ends by comparing each touched key's
 * winning value (deny wins; then the first rule) with the recorded one. So a delta holds exactly
 * the keys whose value changed, whatever happened in between, and `enforced` whenever it changed.
 * An identity reaches only the selectors indexed under its cluster (./selector-cache.ts), and a
 * selector's new identity reaches only the endpoints of the rules that use it.
 *
 * Kubernetes semantics: an endpoint that no policy selects in a direction is not enforced there
 * (the datapath allows everything); once one does, only what some rule allows passes. Replies of
 * allowed connections are the datapath's (conntrack). Traffic from the local host (kubelet probes)
 * is allowed to every ingress-enforced endpoint, as Cilium's allow-localhost=always does
 * (determineAllowLocalhostIngress, https://github.com/cilium/cilium/blob/main/pkg/policy/mapstate.go),
 * unless `allowFromHost` is false.
 */
import { cidrContains, parseCidr } from "../cidr.js";
import {
  CLUSTER_LABEL,
  clusterIdOf,
  LABEL_SOURCE,
  NAMESPACE_LABEL,
  parseLabelList,
  RESERVED_IDENTITY,
  RESERVED_SOURCE,
} from "../identity/labels.js";
import { type ParsedPolicy, type PolicyRule, type PolicySubject, policyId } from "./rules.js";
import { selectorMatches } from "./selector.js";
import { type CachedSelector, type KnownIdentity, RESERVED_LABELS, SelectorCache } from "./selector-cache.js";
import {
  ANY_IDENTITY,
  type CidrIdentity,
  type EndpointPolicy,
  type EndpointPolicyDelta,
  LOCAL_IDENTITY_SCOPE,
  type PolicyDirection,
  type PolicyKey,
  type PolicyKind,
  type PolicyRuleRef,
  type PolicyValue,
} from "./types.js";

export interface ResolverOptions {
  /** the local cluster's name: selectors without a cluster label match only its identities */
  clusterName: string;
  /** allow ingress from the local host (identity 1) to every ingress-enforced endpoint (default true) */
  allowFromHost?: boolean;
  /**
   * the local cluster's id: an identity of another cluster in the local range (cluster id bits 16–23)
   * is forged and ignored, so it can never take a local identity's place
   */
  clusterId?: number;
}

export interface IdentityInput {
  id: number;
  /** security labels, `k8s:app=x` form (as MeshIdentity / Cilium's identities carry them) */
  labels: readonly string[];
  /** the cluster the identity came from: it overrides any cluster label the labels claim */
  cluster: string;
}

export interface EndpointInput {
  /** the agent's endpoint id */
  id: string;
  identity: number;
  /** the endpoint's security labels, `k8s:app=x` form */
  labels: readonly string[];
  namespace: string;
  /** container ports by name, for ingress named ports */
  namedPorts?: ReadonlyArray<{ name: string; port: number; protocol: string }>;
}

/** The rule behind the host's ingress entry (allowFromHost); not a Kubernetes object (`:` is not valid in names). */
export const ALLOW_FROM_HOST_RULE: PolicyRuleRef = {
  kind: "CiliumClusterwideNetworkPolicy",
  name: "builtin:allow-from-host",
  direction: "ingress",
  index: 0,
};

interface RuleState {
  uid: number;
  rule: PolicyRule;
  subject: SubjectState;
  /** null: every peer */
  selectors: CachedSelector<RuleState>[] | null;
  value: PolicyValue;
  /** "direction/proto/port-end" keys when the ports do not depend on the endpoint (no named port) */
  fixedPorts?: string[];
}

interface SubjectState {
  subject: PolicySubject;
  endpoints: Set<EndpointState>;
  rules: Map<string, RuleState>;
}

interface PolicyState {
  policy: ParsedPolicy;
  subjects: Map<string, SubjectState>;
}

interface EndpointState {
  input: EndpointInput;
  labels: Map<string, string>;
  subjects: Set<SubjectState>;
  enforced: { ingress: boolean; egress: boolean };
  /** "direction/proto/port-end" → its entries by peer identity */
  entries: Map<string, PortSlot>;
  /** the batch that last touched the endpoint, and what it recorded */
  batch: number;
  touched: Touched;
}

/** The keys of one endpoint that share direction, protocol and ports. */
interface PortSlot {
  portKey: string;
  template: Omit<PolicyKey, "identity">;
  peers: Map<number, Entry>;
}

/** One key of one endpoint: the rules contributing it and the value they make. */
interface Entry {
  slot: PortSlot;
  identity: number;
  /** the first contributing rule's uid (NO_RULE: none), the others in `more` */
  uid: number;
  more: number[] | undefined;
  value: PolicyValue | undefined;
  /** the batch that last touched it, and its value before that batch */
  batch: number;
  before: PolicyValue | undefined;
}

interface Touched {
  enforced: { ingress: boolean; egress: boolean };
  /** the endpoint did not exist before the batch */
  created: boolean;
  entries: Entry[];
}

const PROTOCOL_NUMBERS: Record<string, number> = { TCP: 6, UDP: 17, SCTP: 132 };
const HOST_RULE_UID = 0;
const HOST_VALUE: PolicyValue = { verdict: "allow", rule: ALLOW_FROM_HOST_RULE };
const ANY_PORT = "0/0-0";
const NO_RULE = -1;

function parseTemplate(portKey: string): Omit<PolicyKey, "identity"> {
  const slash = portKey.indexOf("/");
  const second = portKey.indexOf("/", slash + 1);
  const dash = portKey.indexOf("-", second);
  return {
    direction: portKey.slice(0, slash) as PolicyDirection,
    protocol: Number(portKey.slice(slash + 1, second)),
    port: Number(portKey.slice(second + 1, dash)),
    endPort: Number(portKey.slice(dash + 1)),
  };
}

const keyOf = (entry: Entry): PolicyKey => {
  const t = entry.slot.template;
  return {
    direction: t.direction,
    identity: entry.identity,
    protocol: t.protocol,
    port: t.port,
    endPort: t.endPort,
  };
};

/** Same verdict by the same rule (a re-parsed policy makes new but equal values). */
function sameValue(a: PolicyValue | undefined, b: PolicyValue | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.verdict !== b.verdict) return false;
  const x = a.rule;
  const y = b.rule;
  return (
    x.kind === y.kind &&
    x.namespace === y.namespace &&
    x.name === y.name &&
    x.direction === y.direction &&
    x.index === y.index &&
    x.spec === y.spec
  );
}

/** Deny wins; between equals the first stays. */
const better = (current: PolicyValue | undefined, candidate: PolicyValue): PolicyValue =>
  !current || (candidate.verdict === "deny" && current.verdict === "allow") ? candidate : current;

export class PolicyResolver {
  private readonly cache = new SelectorCache<RuleState>();
  private readonly policies = new Map<string, PolicyState>();
  private readonly endpoints = new Map<string, EndpointState>();
  private readonly rules = new Map<number, RuleState>();
  private readonly cidrs = new Map<string, { identity: number; refs: number }>();
  private nextRuleUid = 1;
  private nextCidrIdentity = LOCAL_IDENTITY_SCOPE + 1;
  private batch = 1;
  private touched: EndpointState[] = [];
  /** identities rules gained (+id) or lost (-id) in this batch, applied to their endpoints together */
  private pending = new Map<RuleState, number[]>();
  private readonly allowFromHost: boolean;

  constructor(private readonly options: ResolverOptions) {
    this.allowFromHost = options.allowFromHost ?? true;
    for (const [id, name] of Object.entries(RESERVED_LABELS))
      this.cache.addIdentity({ id: Number(id), labels: new Map([[`${RESERVED_SOURCE}:${name}`, ""]]) });
  }

  // ---- inputs -------------------------------------------------------------------------------

  upsertPolicy(policy: ParsedPolicy): EndpointPolicyDelta[] {
    const id = policyId(policy);
    const old = this.policies.get(id);
    const state: PolicyState = { policy, subjects: new Map() };
    policy.subjects.forEach((subject, i) => {
      const key = `${i}|${JSON.stringify(subject.selector)}|${subject.enforce.ingress}|${subject.enforce.egress}`;
      const kept = old?.subjects.get(key);
      const subjectState: SubjectState = kept ?? { subject, endpoints: new Set(), rules: new Map() };
      if (!kept)
        for (const endpoint of this.endpoints.values())
          if (selectorMatches(subject.selector, endpoint.labels)) this.attachSubject(subjectState, endpoint);
      const wanted = new Map(subject.rules.map((rule) => [JSON.stringify(rule), rule]));
      for (const [ruleKey, rule] of subjectState.rules)
        if (!wanted.has(ruleKey)) {
          subjectState.rules.delete(ruleKey);
          this.removeRule(rule);
        }
      for (const [ruleKey, rule] of wanted)
        if (!subjectState.rules.has(ruleKey))
          subjectState.rules.set(ruleKey, this.addRule(rule, subjectState));
      subjectState.subject = subject;
      state.subjects.set(key, subjectState);
    });
    for (const [key, subjectState] of old?.subjects ?? [])
      if (!state.subjects.has(key)) this.dropSubject(subjectState);
    this.policies.set(id, state);
    return this.flush();
  }

  deletePolicy(ref: { kind: PolicyKind; namespace?: string; name: string }): EndpointPolicyDelta[] {
    const id = policyId(ref);
    const state = this.policies.get(id);
    if (!state) return [];
    this.policies.delete(id);
    for (const subjectState of state.subjects.values()) this.dropSubject(subjectState);
    return this.flush();
  }

  /**
   * Identities of any cluster, the local one's included (reserved ones are built in). Ignored: ids
   * outside the cluster-scoped space, a remote identity in the local cluster's range (with
   * `clusterId`), and an id already held by another cluster (ids are per-cluster ranges: the first
   * holder keeps it).
   */
  upsertIdentities(identities: readonly IdentityInput[]): EndpointPolicyDelta[] {
    for (const input of identities) {
      if (input.id in RESERVED_LABELS || input.id >= LOCAL_IDENTITY_SCOPE || input.id <= 0) continue;
      if (
        this.options.clusterId !== undefined &&
        input.cluster !== this.options.clusterName &&
        clusterIdOf(input.id) === this.options.clusterId
      )
        continue;
      const old = this.cache.getIdentity(input.id);
      if (old && old.cluster !== input.cluster) continue;
      const labels = parseLabelList(input.labels);
      // the cluster it came from, not the one it claims: a forged label never makes it local
      labels.set(`${LABEL_SOURCE}:${CLUSTER_LABEL}`, input.cluster);
      if (old && sameLabels(old.labels, labels)) continue;
      if (old) this.removeIdentity(old);
      this.addIdentity({ id: input.id, labels, cluster: input.cluster });
    }
    return this.flush();
  }

  /** Every identity of a cluster, e.g. when it disconnects: its identities stop matching. */
  deleteClusterIdentities(cluster: string): EndpointPolicyDelta[] {
    for (const identity of this.cache.identitiesOf(cluster)) this.removeIdentity(identity);
    return this.flush();
  }

  deleteIdentities(ids: readonly number[]): EndpointPolicyDelta[] {
    for (const id of ids) {
      const identity = this.cache.getIdentity(id);
      if (identity && !(id in RESERVED_LABELS) && !identity.cidr) this.removeIdentity(identity);
    }
    return this.flush();
  }

  upsertEndpoint(input: EndpointInput): EndpointPolicyDelta[] {
    const labels = parseLabelList(input.labels);
    labels.set(`${LABEL_SOURCE}:${NAMESPACE_LABEL}`, input.namespace);
    labels.set(`${LABEL_SOURCE}:${CLUSTER_LABEL}`, this.options.clusterName);
    const old = this.endpoints.get(input.id);
    if (old) {
      if (
        sameLabels(old.labels, labels) &&
        JSON.stringify(old.input.namedPorts ?? []) === JSON.stringify(input.namedPorts ?? [])
      ) {
        old.input = input;
        return [];
      }
      this.touch(old);
      for (const subject of [...old.subjects]) this.detachSubject(subject, old);
      old.input = input;
      old.labels = labels;
      this.matchSubjects(old);
      return this.flush();
    }
    const endpoint: EndpointState = {
      input,
      labels,
      subjects: new Set(),
      enforced: { ingress: false, egress: false },
      entries: new Map(),
      batch: 0,
      touched: { enforced: { ingress: false, egress: false }, created: false, entries: [] },
    };
    this.endpoints.set(input.id, endpoint);
    this.touch(endpoint).created = true;
    this.matchSubjects(endpoint);
    return this.flush();
  }

  deleteEndpoint(id: string): EndpointPolicyDelta[] {
    const endpoint = this.endpoints.get(id);
    if (!endpoint) return [];
    this.touch(endpoint);
    for (const subject of [...endpoint.subjects]) this.detachSubject(subject, endpoint);
    const deltas = this.flush();
    this.endpoints.delete(id);
    return deltas;
  }

  // ---- outputs ------------------------------------------------------------------------------

  endpointPolicy(id: string): EndpointPolicy | undefined {
    const endpoint = this.endpoints.get(id);
    if (!endpoint) return undefined;
    const entries: Array<[PolicyKey, PolicyValue]> = [];
    for (const slot of endpoint.entries.values())
      for (const entry of slot.peers.values()) if (entry.value) entries.push([keyOf(entry), entry.value]);
    return { endpoint: id, enforced: { ...endpoint.enforced }, entries };
  }

  /** The CIDR identities policies need, for the ipcache (prefix → identity, no tunnel). */
  cidrIdentities(): CidrIdentity[] {
    return [...this.cidrs].map(([prefix, { identity }]) => ({ prefix, identity }));
  }

  /** The most specific CIDR identity containing an address, else world (what the ipcache's LPM gives). */
  identityOfAddress(address: string): number {
    let best: { identity: number; length: number } | undefined;
    for (const [prefix, { identity }] of this.cidrs) {
      const cidr = parseCidr(prefix);
      if (cidrContains(cidr, address) && (!best || cidr.prefixLength > best.length))
        best = { identity, length: cidr.prefixLength };
    }
    return best?.identity ?? RESERVED_IDENTITY.world;
  }

  // ---- identities ---------------------------------------------------------------------------

  private addIdentity(identity: KnownIdentity): void {
    this.cache.addIdentity(identity);
    for (const selector of this.cache.candidates(identity))
      if (selector.matches(identity)) {
        selector.ids.add(identity.id);
        for (const rule of selector.users)
          if (!this.selectedElsewhere(rule, selector, identity.id)) this.ruleGains(rule, identity.id);
      }
  }

  private removeIdentity(identity: KnownIdentity): void {
    for (const selector of this.cache.candidates(identity))
      if (selector.ids.delete(identity.id))
        for (const rule of selector.users)
          if (!this.selectedElsewhere(rule, selector, identity.id)) this.ruleLoses(rule, identity.id);
    this.cache.removeIdentity(identity);
  }

  private selectedElsewhere(rule: RuleState, except: CachedSelector<RuleState>, id: number): boolean {
    for (const selector of rule.selectors ?? []) if (selector !== except && selector.ids.has(id)) return true;
    return false;
  }

  private acquireCidr(prefix: string): void {
    const known = this.cidrs.get(prefix);
    if (known) {
      known.refs++;
      return;
    }
    const identity = this.nextCidrIdentity++;
    this.cidrs.set(prefix, { identity, refs: 1 });
    this.addIdentity({
      id: identity,
      labels: new Map([
        [`cidr:${prefix}`, ""],
        [`${RESERVED_SOURCE}:world`, ""],
      ]),
      cidr: parseCidr(prefix),
    });
  }

  private releaseCidr(prefix: string): void {
    const known = this.cidrs.get(prefix);
    if (!known || --known.refs > 0) return;
    this.cidrs.delete(prefix);
    const identity = this.cache.getIdentity(known.identity);
    if (identity) this.removeIdentity(identity);
  }

  // ---- rules and subjects -------------------------------------------------------------------

  private addRule(rule: PolicyRule, subject: SubjectState): RuleState {
    const state: RuleState = {
      uid: this.nextRuleUid++,
      rule,
      subject,
      selectors: null,
      value: { verdict: rule.verdict, rule: rule.ref },
    };
    if (rule.ports === null || rule.ports.every((p) => !("name" in p)))
      state.fixedPorts = [
        ...new Set(
          (rule.ports ?? [{ protocol: 0, port: 0, endPort: 0 }]).map((p) =>
            "name" in p ? "" : `${rule.ref.direction}/${p.protocol}/${p.port}-${p.endPort}`,
          ),
        ),
      ];
    if (rule.peers !== null) {
      state.selectors = [];
      // the prefixes' identities first, so that a selector made next finds them
      for (const prefix of cidrPrefixes(rule)) this.acquireCidr(prefix);
      for (const peer of rule.peers) {
        const selector = this.cache.acquire(peer, state);
        if (!state.selectors.includes(selector)) state.selectors.push(selector);
      }
    }
    this.rules.set(state.uid, state);
    for (const endpoint of subject.endpoints) this.applyRule(state, endpoint, +1);
    return state;
  }

  private removeRule(state: RuleState): void {
    this.settle();
    for (const endpoint of state.subject.endpoints) this.applyRule(state, endpoint, -1);
    for (const selector of state.selectors ?? []) this.cache.release(selector, state);
    for (const prefix of cidrPrefixes(state.rule)) this.releaseCidr(prefix);
    this.rules.delete(state.uid);
  }

  private dropSubject(subject: SubjectState): void {
    for (const endpoint of [...subject.endpoints]) this.detachSubject(subject, endpoint);
    for (const rule of subject.rules.values()) this.removeRule(rule);
  }

  private matchSubjects(endpoint: EndpointState): void {
    for (const policy of this.policies.values())
      for (const subject of policy.subjects.values())
        if (selectorMatches(subject.subject.selector, endpoint.labels)) this.attachSubject(subject, endpoint);
  }

  private attachSubject(subject: SubjectState, endpoint: EndpointState): void {
    this.touch(endpoint);
    subject.endpoints.add(endpoint);
    endpoint.subjects.add(subject);
    for (const rule of subject.rules.values()) this.applyRule(rule, endpoint, +1);
  }

  private detachSubject(subject: SubjectState, endpoint: EndpointState): void {
    this.settle();
    this.touch(endpoint);
    for (const rule of subject.rules.values()) this.applyRule(rule, endpoint, -1);
    subject.endpoints.delete(endpoint);
    endpoint.subjects.delete(subject);
  }

  /** The rule's "direction/proto/port-end" keys on this endpoint (named ports resolved against it). */
  private portsFor(rule: RuleState, endpoint: EndpointState): string[] {
    if (rule.fixedPorts) return rule.fixedPorts;
    const direction = rule.rule.ref.direction;
    const keys = new Set<string>();
    for (const port of rule.rule.ports ?? []) {
      if (!("name" in port)) keys.add(`${direction}/${port.protocol}/${port.port}-${port.endPort}`);
      else if (direction === "ingress")
        for (const named of endpoint.input.namedPorts ?? [])
          if (
            named.name === port.name &&
            PROTOCOL_NUMBERS[named.protocol.toUpperCase() || "TCP"] === port.protocol
          )
            keys.add(`${direction}/${port.protocol}/${named.port}-${named.port}`);
    }
    return [...keys];
  }

  private ruleIdentities(rule: RuleState): Iterable<number> {
    if (rule.selectors === null) return [ANY_IDENTITY];
    if (rule.selectors.length === 1) return rule.selectors[0].ids;
    const ids = new Set<number>();
    for (const selector of rule.selectors) for (const id of selector.ids) ids.add(id);
    return ids;
  }

  private applyRule(rule: RuleState, endpoint: EndpointState, sign: 1 | -1): void {
    const ports = this.portsFor(rule, endpoint);
    if (ports.length === 0) return;
    for (const id of this.ruleIdentities(rule))
      for (const portKey of ports) this.contribute(endpoint, portKey, id, rule.uid, rule.value, sign);
  }

  private ruleGains(rule: RuleState, id: number): void {
    this.defer(rule, id);
  }

  private ruleLoses(rule: RuleState, id: number): void {
    this.defer(rule, -id);
  }

  /**
   * Identity changes reach rules one at a time but their endpoints together: a remote cluster's 10k
   * identities selected by one rule resolve the rule's ports on each endpoint once, not 10k times.
   * Anything that changes which endpoints or rules exist settles them first.
   */
  private defer(rule: RuleState, op: number): void {
    const ops = this.pending.get(rule);
    if (ops) ops.push(op);
    else this.pending.set(rule, [op]);
  }

  private settle(): void {
    if (this.pending.size === 0) return;
    const pending = this.pending;
    this.pending = new Map();
    for (const [rule, ops] of pending)
      for (const endpoint of rule.subject.endpoints)
        for (const portKey of this.portsFor(rule, endpoint)) {
          const slot = this.slot(endpoint, portKey);
          for (const op of ops)
            this.contributeTo(endpoint, slot, op > 0 ? op : -op, rule.uid, rule.value, op > 0 ? 1 : -1);
        }
  }

  // ---- entries and batches ------------------------------------------------------------------

  private touch(endpoint: EndpointState): Touched {
    if (endpoint.batch !== this.batch) {
      endpoint.batch = this.batch;
      endpoint.touched = { enforced: { ...endpoint.enforced }, created: false, entries: [] };
      this.touched.push(endpoint);
    }
    return endpoint.touched;
  }

  private slot(endpoint: EndpointState, portKey: string): PortSlot {
    let slot = endpoint.entries.get(portKey);
    if (!slot) {
      slot = { portKey, template: parseTemplate(portKey), peers: new Map() };
      endpoint.entries.set(portKey, slot);
    }
    return slot;
  }

  private contribute(
    endpoint: EndpointState,
    portKey: string,
    id: number,
    uid: number,
    value: PolicyValue,
    sign: 1 | -1,
  ): void {
    const slot = sign > 0 ? this.slot(endpoint, portKey) : endpoint.entries.get(portKey);
    if (slot) this.contributeTo(endpoint, slot, id, uid, value, sign);
  }

  private contributeTo(
    endpoint: EndpointState,
    slot: PortSlot,
    id: number,
    uid: number,
    value: PolicyValue,
    sign: 1 | -1,
  ): void {
    let entry = slot.peers.get(id);
    if (!entry) {
      if (sign < 0) return;
      entry = {
        slot,
        identity: id,
        uid: NO_RULE,
        more: undefined,
        value: undefined,
        batch: 0,
        before: undefined,
      };
      slot.peers.set(id, entry);
    }
    if (entry.batch !== this.batch) {
      entry.batch = this.batch;
      entry.before = entry.value;
      this.touch(endpoint).entries.push(entry);
    }
    if (sign > 0) {
      if (entry.uid === uid || entry.more?.includes(uid)) return;
      if (entry.uid === NO_RULE) entry.uid = uid;
      else if (entry.more) entry.more.push(uid);
      else entry.more = [uid];
      entry.value = better(entry.value, value);
      return;
    }
    if (entry.uid === uid) entry.uid = entry.more?.pop() ?? NO_RULE;
    else {
      const at = entry.more?.indexOf(uid) ?? -1;
      if (at < 0) return;
      entry.more?.splice(at, 1);
    }
    if (entry.value === value) entry.value = this.winner(entry);
  }

  private winner(entry: Entry): PolicyValue | undefined {
    if (entry.uid === NO_RULE) return undefined;
    let best = this.valueOf(entry.uid);
    for (const uid of entry.more ?? []) {
      const value = this.valueOf(uid);
      if (value) best = better(best, value);
    }
    return best;
  }

  private valueOf(uid: number): PolicyValue | undefined {
    return uid === HOST_RULE_UID ? HOST_VALUE : this.rules.get(uid)?.value;
  }

  /** Ends a batch: the enforcement and host entries of the endpoints touched, then their deltas. */
  private flush(): EndpointPolicyDelta[] {
    this.settle();
    const deltas: EndpointPolicyDelta[] = [];
    for (const endpoint of this.touched) {
      const enforced = { ingress: false, egress: false };
      for (const subject of endpoint.subjects) {
        enforced.ingress ||= subject.subject.enforce.ingress;
        enforced.egress ||= subject.subject.enforce.egress;
      }
      if (this.allowFromHost && enforced.ingress !== endpoint.enforced.ingress)
        this.contribute(
          endpoint,
          `ingress/${ANY_PORT}`,
          RESERVED_IDENTITY.host,
          HOST_RULE_UID,
          HOST_VALUE,
          enforced.ingress ? 1 : -1,
        );
      endpoint.enforced = enforced;
    }
    for (const endpoint of this.touched) {
      const touched = endpoint.touched;
      const delta: EndpointPolicyDelta = { endpoint: endpoint.input.id, upserts: [], deletes: [] };
      const before = touched.enforced;
      if (
        touched.created ||
        before.ingress !== endpoint.enforced.ingress ||
        before.egress !== endpoint.enforced.egress
      )
        delta.enforced = { ...endpoint.enforced };
      for (const entry of touched.entries) {
        if (!sameValue(entry.value, entry.before)) {
          if (entry.value) delta.upserts.push([keyOf(entry), entry.value]);
          else delta.deletes.push(keyOf(entry));
        }
        // an emptied entry leaves only now, so one removed and re-added within a batch stays one
        if (entry.uid === NO_RULE && entry.slot.peers.get(entry.identity) === entry) {
          entry.slot.peers.delete(entry.identity);
          if (entry.slot.peers.size === 0 && endpoint.entries.get(entry.slot.portKey) === entry.slot)
            endpoint.entries.delete(entry.slot.portKey);
        }
      }
      if (delta.enforced || delta.upserts.length > 0 || delta.deletes.length > 0) deltas.push(delta);
    }
    this.touched = [];
    this.batch++;
    return deltas;
  }
}

function sameLabels(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, value] of a) if (b.get(key) !== value) return false;
  return true;
}

/** The prefixes a rule needs CIDR identities for: its blocks (but a /0, which is world) and their exceptions. */
function cidrPrefixes(rule: PolicyRule): string[] {
  return (rule.peers ?? []).flatMap((peer) =>
    peer.type !== "cidr" ? [] : [...(peer.prefix.endsWith("/0") ? [] : [peer.prefix]), ...peer.except],
  );
}
