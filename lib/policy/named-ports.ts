/**
 * Named ports in egress rules. An ingress rule's named port resolves against the selected endpoint's
 * own container ports (resolver.ts); an egress rule's names a port of the peers, so it resolves
 * against the container ports of the cluster's pods (their MeshEndpoints, as Cilium's against its
 * CiliumEndpoints' named ports): every port number that some pod gives that name and protocol. The
 * rule keeps the name when no pod has it (it matches no traffic, said in the status). Pure.
 */
import { egressNamedPortOfWarning, type ParsedPolicy, type PortRule } from "./rules.js";

export interface NamedPort {
  name: string;
  port: number;
  /** "TCP" (also when empty), "UDP", "SCTP" */
  protocol: string;
}

const PROTOCOL_NUMBERS: Record<string, number> = { TCP: 6, UDP: 17, SCTP: 132 };

/** Port numbers by protocol number and name, over the cluster's pods. */
export class NamedPortIndex {
  private constructor(
    private readonly byName: ReadonlyMap<string, readonly number[]>,
    /** changes whenever the index does: what a policy resolved against it is compared by */
    readonly signature: string,
  ) {}

  static of(ports: Iterable<NamedPort>): NamedPortIndex {
    const sets = new Map<string, Set<number>>();
    for (const { name, port, protocol } of ports) {
      const number = PROTOCOL_NUMBERS[protocol.toUpperCase() || "TCP"];
      if (number === undefined || !Number.isInteger(port) || port < 1 || port > 65535) continue;
      const key = `${number}/${name}`;
      const set = sets.get(key) ?? new Set();
      set.add(port);
      sets.set(key, set);
    }
    const byName = new Map(
      [...sets]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([key, set]) => [key, [...set].sort((a, b) => a - b)]),
    );
    return new NamedPortIndex(byName, JSON.stringify([...byName]));
  }

  ports(protocol: number, name: string): readonly number[] {
    return this.byName.get(`${protocol}/${name}`) ?? [];
  }
}

/** Whether the policy has a named port in an egress rule (its resolution depends on the index). */
export function hasEgressNamedPorts(policy: ParsedPolicy): boolean {
  return policy.subjects.some((subject) =>
    subject.rules.some(
      (rule) => rule.ref.direction === "egress" && (rule.ports ?? []).some((port) => "name" in port),
    ),
  );
}

/**
 * The policy with its egress rules' named ports replaced by the numbers the index has for them; the
 * parser's warning that a name matches nothing stays only for the names no pod has.
 */
export function resolveEgressNamedPorts(policy: ParsedPolicy, index: NamedPortIndex): ParsedPolicy {
  const resolved = new Set<string>();
  const subjects = policy.subjects.map((subject) => ({
    ...subject,
    rules: subject.rules.map((rule) => {
      if (rule.ref.direction !== "egress" || !rule.ports) return rule;
      const ports = rule.ports.flatMap((port): PortRule[] => {
        if (!("name" in port)) return [port];
        const numbers = index.ports(port.protocol, port.name);
        // kept when unresolved: a named egress port matches nothing, while dropping it could leave
        // an empty list, which the resolver would take as every port
        if (numbers.length === 0) return [port];
        resolved.add(port.name);
        return numbers.map((number) => ({ protocol: port.protocol, port: number, endPort: number }));
      });
      return { ...rule, ports };
    }),
  }));
  const warnings = policy.warnings.filter((warning) => {
    const name = egressNamedPortOfWarning(warning);
    return name === undefined || !resolved.has(name);
  });
  return { ...policy, subjects, warnings };
}
