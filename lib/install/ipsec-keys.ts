/**
 * The IPsec key Secret an `--encryption ipsec` install needs: created with a fresh key when the
 * cluster has none (as `cilium install` does), never replaced when it has one — every cluster of a
 * mesh must hold the same key, so a user who copied it from another cluster keeps it.
 */
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { IPSEC_KEYS_SECRET, newIpsecKeysLine } from "../api/encryption.js";
import { applySecret, encodeSecretData, readSecret } from "../k8s/client.js";

export type IpsecKeysOutcome = "created" | "kept";

export async function ensureIpsecKeys(kc: KubeConfig): Promise<IpsecKeysOutcome> {
  const core = kc.makeApiClient(CoreV1Api);
  const existing = await readSecret(core, IPSEC_KEYS_SECRET.name, IPSEC_KEYS_SECRET.namespace);
  if (existing?.data?.[IPSEC_KEYS_SECRET.key]) return "kept";
  await applySecret(core, {
    metadata: { name: IPSEC_KEYS_SECRET.name, namespace: IPSEC_KEYS_SECRET.namespace },
    data: encodeSecretData({ [IPSEC_KEYS_SECRET.key]: newIpsecKeysLine() }),
  });
  return "created";
}

/** What install prints: where the key came from, and how the other clusters get the same. */
export function ipsecKeysLine(outcome: IpsecKeysOutcome, context: string): string {
  const secret = `${IPSEC_KEYS_SECRET.namespace}/${IPSEC_KEYS_SECRET.name}`;
  return outcome === "kept"
    ? `IPsec key Secret ${secret} present: kept (every cluster of the mesh must hold the same key)`
    : `IPsec key Secret ${secret} created with a new key; every cluster of the mesh needs the same one: ` +
        `kubectl --context ${context} -n ${IPSEC_KEYS_SECRET.namespace} get secret ${IPSEC_KEYS_SECRET.name} -o yaml | ` +
        `kubectl --context <other cluster> apply -f -   (before installing there)`;
}
