/** The agent creates the mesh's CRDs it finds absent, so a cluster needs no install step for them. */
import { ApiextensionsV1Api, type KubeConfig } from "@kubernetes/client-node";
import { MESH_CRDS } from "../../lib/api/crds.js";
import { apiStatus } from "../../lib/k8s/client.js";
import type { Logger } from "../../lib/log.js";

/** Creates the CRDs that are absent. Idempotent: agents starting together all call it; 409 is success. */
export async function ensureCrds(kubeConfig: KubeConfig, log: Logger): Promise<void> {
  const api = kubeConfig.makeApiClient(ApiextensionsV1Api);
  for (const crd of MESH_CRDS) {
    const name = crd.metadata?.name ?? "";
    try {
      await api.readCustomResourceDefinition({ name });
      continue;
    } catch (error) {
      if (apiStatus(error) !== 404) throw error;
    }
    try {
      await api.createCustomResourceDefinition({ body: crd });
      log.info({ crd: name }, "created CRD");
    } catch (error) {
      if (apiStatus(error) !== 409) throw error;
    }
  }
}
