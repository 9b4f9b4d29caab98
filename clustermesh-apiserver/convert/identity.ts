/** MeshIdentity (name = numeric id, `security-labels`) → identity key value. Pure. */
import type { MeshIdentity } from "../../lib/api/crds.js";
import { identityBelongsTo } from "../../lib/kvstore/cluster-identity.js";
import { formatLabels, labelsFromMap } from "../../lib/kvstore/values/identity.js";
import type { PublishingCluster } from "./service.js";

export const NAMESPACE_LABEL = "k8s:io.kubernetes.pod.namespace";

export type IdentityConversion =
  | { ok: true; id: number; labels: string; namespace: string | undefined }
  | { ok: false; reason: string };

export function identityValueFor(cluster: PublishingCluster, identity: MeshIdentity): IdentityConversion {
  const name = identity.metadata.name;
  if (!/^[1-9]\d{0,9}$/.test(name)) return { ok: false, reason: `name "${name}" is not a numeric identity` };
  const id = Number(name);
  // Remote readers reject identities outside our range; publishing them would only add noise.
  if (!identityBelongsTo(id, cluster.id))
    return { ok: false, reason: `identity ${id} is outside cluster ${cluster.id}'s range` };
  const securityLabels = identity["security-labels"] ?? {};
  // Cilium skips identities without security labels.
  if (Object.keys(securityLabels).length === 0) return { ok: false, reason: "no security labels" };
  return {
    ok: true,
    id,
    labels: formatLabels(labelsFromMap(securityLabels)),
    namespace: securityLabels[NAMESPACE_LABEL],
  };
}
