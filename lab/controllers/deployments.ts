import { createHash } from "node:crypto";
import type { V1Deployment, V1DeploymentStatus, V1Pod } from "@kubernetes/client-node";
import { controllerOf, isPodFinished, isPodReady, isPodTerminating, stableStringify } from "./objects.js";

/**
 * The lab's Deployment controller decisions. Simplification (documented in lab/controllers/README.md):
 * there are no ReplicaSets; pods carry the `pod-template-hash` label of the template they were made
 * from and are owned directly by the Deployment. Rolling updates honour maxSurge/maxUnavailable
 * (defaults 25%/25%) and start new pods before old ones go; Recreate removes old pods first.
 */

export const POD_TEMPLATE_HASH_LABEL = "pod-template-hash";

export function templateHash(deployment: V1Deployment): string {
  const digest = createHash("sha256")
    .update(stableStringify(deployment.spec?.template ?? {}))
    .digest();
  // Same alphabet as upstream's SafeEncodeString: no vowels, so no words in names.
  const alphabet = "bcdfghjklmnpqrstvwxz2456789";
  let out = "";
  for (let i = 0; i < 10; i++) out += alphabet[digest[i] % alphabet.length];
  return out;
}

/** An intstr percentage or number relative to the replica count, rounded as upstream does. */
export function scaledValue(
  value: number | string | undefined,
  replicas: number,
  fallback: string,
  roundUp: boolean,
) {
  const raw = value ?? fallback;
  if (typeof raw === "number") return raw;
  if (/^\d+$/.test(raw)) return Number(raw);
  const percent = Number(raw.replace(/%$/, ""));
  const exact = (percent * replicas) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

export interface DeploymentPlan {
  /** How many new pods (current template) to create. */
  create: number;
  /** Pod names to delete. */
  delete: string[];
  status: V1DeploymentStatus;
}

function byReadinessThenAge(a: V1Pod, b: V1Pod): number {
  // Delete first: not ready, then the youngest (upstream's ActivePods ordering, simplified).
  const readyA = isPodReady(a) ? 1 : 0;
  const readyB = isPodReady(b) ? 1 : 0;
  if (readyA !== readyB) return readyA - readyB;
  const age = String(b.metadata?.creationTimestamp ?? "").localeCompare(
    String(a.metadata?.creationTimestamp ?? ""),
  );
  return age || (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? "");
}

export function ownedPods(deployment: V1Deployment, pods: readonly V1Pod[]): V1Pod[] {
  const uid = deployment.metadata?.uid;
  return pods.filter(
    (pod) =>
      controllerOf(pod)?.uid === uid &&
      controllerOf(pod)?.kind === "Deployment" &&
      (pod.metadata?.namespace ?? "default") === (deployment.metadata?.namespace ?? "default"),
  );
}

/**
 * Decides one step towards the desired state. `pendingCreates` counts pods this controller created
 * that the caller's cache has not shown yet (they count as new, not-ready pods).
 */
export function planDeployment(
  deployment: V1Deployment,
  pods: readonly V1Pod[],
  pendingCreates = 0,
): DeploymentPlan {
  const replicas = deployment.spec?.replicas ?? 1;
  const hash = templateHash(deployment);
  const owned = ownedPods(deployment, pods);
  const active = owned.filter((pod) => !isPodTerminating(pod) && !isPodFinished(pod));
  const current = active.filter((pod) => pod.metadata?.labels?.[POD_TEMPLATE_HASH_LABEL] === hash);
  const old = active.filter((pod) => pod.metadata?.labels?.[POD_TEMPLATE_HASH_LABEL] !== hash);
  const currentCount = current.length + pendingCreates;
  const readyCurrent = current.filter(isPodReady).length;
  const readyOld = old.filter(isPodReady).length;
  const paused = deployment.spec?.paused === true;

  let create = 0;
  const toDelete: V1Pod[] = [];
  if (!paused) {
    if (deployment.spec?.strategy?.type === "Recreate") {
      if (old.length > 0) toDelete.push(...old);
      else if (owned.some(isPodTerminating) && currentCount === 0) {
        // Recreate waits for the old pods to be gone before starting new ones.
      } else create = Math.max(0, replicas - currentCount);
    } else {
      const rolling = deployment.spec?.strategy?.rollingUpdate;
      let maxSurge = scaledValue(rolling?.maxSurge, replicas, "25%", true);
      const maxUnavailable = scaledValue(rolling?.maxUnavailable, replicas, "25%", false);
      if (maxSurge === 0 && maxUnavailable === 0) maxSurge = 1; // upstream rejects 0/0; stay live
      const total = currentCount + old.length;
      create = Math.max(0, Math.min(replicas - currentCount, replicas + maxSurge - total));
      if (old.length > 0) {
        // Old pods go as far as availability allows; not-ready old pods never count as available.
        const minAvailable = replicas - maxUnavailable;
        let removable = readyCurrent + readyOld - minAvailable;
        for (const pod of [...old].sort(byReadinessThenAge)) {
          if (!isPodReady(pod)) toDelete.push(pod);
          else if (removable > 0) {
            toDelete.push(pod);
            removable--;
          }
        }
        // Never leave more old pods than there is room for once the new ones are counted.
      } else if (currentCount > replicas) {
        const excess = currentCount - replicas;
        toDelete.push(
          ...[...current].sort(byReadinessThenAge).slice(0, Math.max(0, Math.min(excess, current.length))),
        );
      }
    }
  }

  const ready = readyCurrent + readyOld;
  const maxUnavailableForStatus = scaledValue(
    deployment.spec?.strategy?.rollingUpdate?.maxUnavailable,
    replicas,
    "25%",
    false,
  );
  const available = ready >= replicas - maxUnavailableForStatus;
  const status: V1DeploymentStatus = {
    observedGeneration: deployment.metadata?.generation,
    replicas: active.length,
    updatedReplicas: current.length,
    readyReplicas: ready,
    availableReplicas: ready,
    unavailableReplicas: Math.max(0, replicas - ready),
    conditions: [
      {
        type: "Available",
        status: available ? "True" : "False",
        reason: available ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
        message: available
          ? "Deployment has minimum availability."
          : "Deployment does not have minimum availability.",
      },
      {
        type: "Progressing",
        status: "True",
        reason:
          current.length === replicas && old.length === 0 ? "NewReplicaSetAvailable" : "ReplicaSetUpdated",
        message: `pods with template hash ${hash}: ${current.length}/${replicas}`,
      },
    ],
  };
  return { create, delete: toDelete.map((pod) => pod.metadata?.name ?? ""), status };
}

/** The pod a Deployment makes from its template. */
export function podFromTemplate(deployment: V1Deployment, suffix: string): V1Pod {
  const hash = templateHash(deployment);
  const template = deployment.spec?.template;
  const name = deployment.metadata?.name ?? "deployment";
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...(template?.metadata ?? {}),
      name: `${name.slice(0, 40)}-${hash}-${suffix}`,
      namespace: deployment.metadata?.namespace ?? "default",
      labels: { ...(template?.metadata?.labels ?? {}), [POD_TEMPLATE_HASH_LABEL]: hash },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "Deployment",
          name,
          uid: deployment.metadata?.uid ?? "",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: template?.spec ?? { containers: [] },
  };
}

/** Status fields the controller owns, compared without the conditions' timestamps. */
export function statusChanged(current: V1DeploymentStatus | undefined, desired: V1DeploymentStatus): boolean {
  const view = (s: V1DeploymentStatus | undefined) =>
    stableStringify({
      observedGeneration: s?.observedGeneration,
      replicas: s?.replicas ?? 0,
      updatedReplicas: s?.updatedReplicas ?? 0,
      readyReplicas: s?.readyReplicas ?? 0,
      availableReplicas: s?.availableReplicas ?? 0,
      unavailableReplicas: s?.unavailableReplicas ?? 0,
      conditions: (s?.conditions ?? []).map((c) => ({
        type: c.type,
        status: c.status,
        reason: c.reason,
        message: c.message,
      })),
    });
  return view(current) !== view(desired);
}

/** Pods whose controlling Deployment no longer exists (the garbage collector's job). */
export function orphanedPods(pods: readonly V1Pod[], deployments: readonly V1Deployment[]): V1Pod[] {
  const live = new Set(deployments.map((d) => d.metadata?.uid));
  return pods.filter((pod) => {
    const owner = controllerOf(pod);
    return owner?.kind === "Deployment" && !live.has(owner.uid) && !isPodTerminating(pod);
  });
}
