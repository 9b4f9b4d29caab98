/**
 * Peers of a rule: label selectors scoped to the policy's namespace and (Cilium ≥ 1.19's
 * policy-default-local-cluster) to the local cluster unless they name one, CIDR blocks with their
 * exceptions, and Cilium's entities.
 */
import { POLICY_ENTITIES } from "../api/policy-crds.js";
import { cidrsOverlap, formatCidr, parseCidr } from "../cidr.js";
import { CLUSTER_LABEL, LABEL_SOURCE, NAMESPACE_LABEL, RESERVED_SOURCE } from "../identity/labels.js";
import type { FieldErrors } from "./errors.js";
import type { PeerSelector } from "./rules.js";
import { hasRequirementOn, type LabelSelector, type Requirement } from "./selector.js";

export const NAMESPACE_KEY = `${LABEL_SOURCE}:${NAMESPACE_LABEL}`;
export const CLUSTER_KEY = `${LABEL_SOURCE}:${CLUSTER_LABEL}`;

const reservedKey = (name: string) => `${RESERVED_SOURCE}:${name}`;
const exists = (key: string): Requirement => ({ key, operator: "Exists", values: [] });

export interface PeerScope {
  /** the local cluster's name: a selector without a cluster requirement matches only it */
  clusterName: string;
  /** a namespaced policy's namespace: a selector without a namespace requirement matches only it */
  namespace?: string;
}

/**
 * Restricts a selector to the policy's namespace (a cluster-wide policy's: to pods of any namespace)
 * and to the local cluster unless it says otherwise, as
 * Cilium does (https://github.com/cilium/cilium/blob/main/pkg/k8s/apis/cilium.io/utils/utils.go;
 * the cluster part is Cilium's `policy-default-local-cluster`, on by default since 1.19). Selectors of reserved
 * labels (`reserved:host`) pick identities that belong to no namespace or cluster: left alone.
 */
export function scopeSelector(selector: LabelSelector, scope: PeerScope): LabelSelector {
  if (selector.requirements.some((r) => r.key.startsWith(`${RESERVED_SOURCE}:`))) return selector;
  const requirements = [...selector.requirements];
  // a cluster-wide selector without a namespace still selects only pods (Cilium: namespace Exists)
  if (!hasRequirementOn(selector, NAMESPACE_KEY))
    requirements.push(
      scope.namespace !== undefined
        ? { key: NAMESPACE_KEY, operator: "In", values: [scope.namespace] }
        : { key: NAMESPACE_KEY, operator: "Exists", values: [] },
    );
  if (!hasRequirementOn(selector, CLUSTER_KEY))
    requirements.push({ key: CLUSTER_KEY, operator: "In", values: [scope.clusterName] });
  return { requirements };
}

/** A CIDR block and its exceptions at `path` (`cidr`, `except[i]`); exceptions must lie inside it. */
export function parseCidrPeer(
  cidr: unknown,
  except: unknown,
  path: { cidr: string; except: string },
  errors: FieldErrors,
): PeerSelector | undefined {
  if (typeof cidr !== "string") {
    errors.add(path.cidr, "must be a CIDR string, e.g. 192.0.2.0/24");
    return undefined;
  }
  let block: ReturnType<typeof parseCidr>;
  try {
    block = parseCidr(cidr);
  } catch (error) {
    errors.add(path.cidr, (error as Error).message);
    return undefined;
  }
  const excepts: string[] = [];
  if (except !== undefined && except !== null) {
    if (!Array.isArray(except)) errors.add(path.except, "must be a list of CIDRs");
    else
      except.forEach((text, i) => {
        const at = `${path.except}[${i}]`;
        try {
          const inner = parseCidr(String(text));
          if (
            inner.family !== block.family ||
            inner.prefixLength <= block.prefixLength ||
            !cidrsOverlap(inner, block)
          )
            errors.add(at, `${text} must be a strict subset of ${formatCidr(block)}`);
          else excepts.push(formatCidr(inner));
        } catch (error) {
          errors.add(at, (error as Error).message);
        }
      });
  }
  return { type: "cidr", prefix: formatCidr(block), except: [...new Set(excepts)].sort() };
}

/** Reserved identities that are part of a cluster (Cilium's `cluster` entity adds them to the cluster's pods). */
const CLUSTER_RESERVED = ["host", "remote-node", "kube-apiserver", "health", "init", "unmanaged"];

/** Entity names, as the CRD schema admits them (lib/api/policy-crds.ts). */
export const ENTITIES = POLICY_ENTITIES;

/** What an entity selects; null = every peer (`all`), undefined = no such entity. */
export function entityPeers(entity: string, clusterName: string): PeerSelector[] | null | undefined {
  const labels = (...requirements: Requirement[]): PeerSelector => ({
    type: "labels",
    selector: { requirements },
  });
  const reserved = (names: string[]) => names.map((n) => labels(exists(reservedKey(n))));
  switch (entity) {
    case "all":
      return null;
    case "world":
    case "world-ipv4":
    case "world-ipv6":
      return reserved(["world"]);
    case "cluster":
      return [
        labels({ key: CLUSTER_KEY, operator: "In", values: [clusterName] }),
        ...reserved(CLUSTER_RESERVED),
      ];
    case "mesh":
      return [labels(exists(CLUSTER_KEY)), ...reserved(CLUSTER_RESERVED)];
    case "host":
    case "remote-node":
    case "kube-apiserver":
    case "health":
    case "init":
    case "unmanaged":
      return reserved([entity]);
    default:
      return undefined;
  }
}
