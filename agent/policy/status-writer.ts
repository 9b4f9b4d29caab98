/**
 * Writes each CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy's `Valid` condition
 * (lib/policy/status.ts) on its status subresource, when the object does not carry it already: every
 * agent computes the same condition, so after the first write the others find it there and write
 * nothing. Kubernetes' NetworkPolicy has no status to write: its errors are in the agent's status
 * and log. `conditionPatch` is pure; `PolicyStatusWriter` does the I/O.
 */
import { CustomObjectsApi, type KubeConfig, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { Logger } from "../../lib/log.js";
import type { PolicyCondition } from "../../lib/policy/status.js";
import { CILIUM_POLICY_API } from "../k8s/caches.js";
import type { PolicyObject } from "./feed.js";

interface WrittenCondition extends PolicyCondition {
  lastTransitionTime?: string;
  observedGeneration?: number;
}

interface ObjectWithStatus {
  metadata?: { generation?: number };
  status?: { conditions?: WrittenCondition[] };
}

/** The status patch for an object, or undefined when it already says this (for its generation). */
export function conditionPatch(
  object: unknown,
  condition: PolicyCondition,
  now: Date,
): { status: { conditions: WrittenCondition[] } } | undefined {
  const current = object as ObjectWithStatus;
  const generation = current.metadata?.generation;
  const conditions = current.status?.conditions ?? [];
  const existing = conditions.find((entry) => entry.type === condition.type);
  if (
    existing &&
    existing.status === condition.status &&
    existing.reason === condition.reason &&
    existing.message === condition.message &&
    existing.observedGeneration === generation
  )
    return undefined;
  const written: WrittenCondition = {
    ...condition,
    // the transition time moves only when the status does (Kubernetes' condition convention)
    lastTransitionTime:
      existing?.status === condition.status && existing.lastTransitionTime
        ? existing.lastTransitionTime
        : now.toISOString(),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
  return {
    status: { conditions: [...conditions.filter((entry) => entry.type !== condition.type), written] },
  };
}

export class PolicyStatusWriter {
  private readonly api: CustomObjectsApi;
  private readonly failed = new Set<string>();

  constructor(
    kubeConfig: KubeConfig,
    private readonly log: Logger,
  ) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  async write(
    conditions: ReadonlyArray<{ policy: PolicyObject; condition: PolicyCondition }>,
  ): Promise<void> {
    const { group, version } = CILIUM_POLICY_API;
    for (const { policy, condition } of conditions) {
      if (policy.kind === "NetworkPolicy") continue;
      const body = conditionPatch(policy.object, condition, new Date());
      if (!body) continue;
      const key = `${policy.kind}/${policy.namespace ?? ""}/${policy.name}/${policy.version}`;
      if (this.failed.has(key)) continue; // retried when the object changes
      try {
        const options = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
        if (policy.kind === "CiliumNetworkPolicy")
          await this.api.patchNamespacedCustomObjectStatus(
            {
              group,
              version,
              plural: "ciliumnetworkpolicies",
              namespace: policy.namespace ?? "",
              name: policy.name,
              body,
            },
            options,
          );
        else
          await this.api.patchClusterCustomObjectStatus(
            { group, version, plural: "ciliumclusterwidenetworkpolicies", name: policy.name, body },
            options,
          );
      } catch (err) {
        this.failed.add(key);
        this.log.warn({ err, policy: key }, "policy: writing the policy's status failed");
      }
    }
  }
}
