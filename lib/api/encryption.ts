/**
 * Encryption as the programs agree on it: the modes (ConfigMap `clustermesh-config`, `encryption`
 * key; agent flag `--encryption`), the IPsec backend choice (agent flag `--ipsec-backend`, `meshctl
 * lab up --ipsec-backend`), the backends the agent reports in its status, the IPsec key Secret, and
 * the name the agent gives a node's WireGuard device (the lab removes what wireguard-go leaves).
 */
import { createHash, randomBytes } from "node:crypto";

export type EncryptionMode = "none" | "wireguard" | "ipsec";
export const ENCRYPTION_MODES: readonly EncryptionMode[] = ["none", "wireguard", "ipsec"];

export function isEncryptionMode(value: string): value is EncryptionMode {
  return (ENCRYPTION_MODES as readonly string[]).includes(value);
}

/** `--ipsec-backend`: auto follows the kernel ESP probe. */
export type IpsecBackendChoice = "auto" | "kernel-xfrm" | "libipsec";
export const IPSEC_BACKEND_CHOICES: readonly IpsecBackendChoice[] = ["auto", "kernel-xfrm", "libipsec"];

/** The IPsec backend in use: kernel XFRM states, or strongSwan's userspace ESP (libipsec). */
export type IpsecBackendName = "kernel-xfrm" | "strongswan-libipsec";
/** The backend the agent's status names: kernel WireGuard, wireguard-go, or an IPsec backend. */
export type EncryptionBackendName = "kernel" | "wireguard-go" | IpsecBackendName;

/** The IPsec key Secret (Cilium's `cilium-ipsec-keys`, data key `keys`), one per cluster, same key in every cluster of a mesh. */
export const IPSEC_KEYS_SECRET = {
  namespace: "kube-system",
  name: "clustermesh-ipsec-keys",
  key: "keys",
} as const;

/**
 * A fresh IPsec key line in Cilium's format: key id 3, "+" (a key per node pair, derived), one
 * random rfc4106 AES-GCM key (16 bytes + 4 bytes salt), ICV 128 bits
 * (https://docs.cilium.io/en/stable/security/network/encryption-ipsec/#generate-import-the-psk).
 */
export function newIpsecKeysLine(): string {
  return `3+ rfc4106(gcm(aes)) ${randomBytes(20).toString("hex")} 128`;
}

const IFNAME_MAX = 15;

/**
 * A machine-unique interface name from a node-unique prefix (e.g. the lab's node netns name):
 * `<prefix>-wg` when it fits in 15 characters, else `wg` + 10 hex digits of the prefix's hash.
 * wireguard-go's UAPI socket (/var/run/wireguard/<name>.sock) is global to the machine, not per
 * network namespace, hence machine-unique.
 */
export function wireGuardInterfaceName(nodeUniquePrefix: string): string {
  const direct = `${nodeUniquePrefix}-wg`;
  if (direct.length <= IFNAME_MAX && /^[A-Za-z0-9_.-]+$/.test(direct)) return direct;
  return `wg${createHash("sha256").update(nodeUniquePrefix).digest("hex").slice(0, 10)}`;
}
