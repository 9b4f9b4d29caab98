/** The IPsec key Secret (Cilium's `cilium-ipsec-keys`, data key `keys`), one per cluster, same key in every cluster of a mesh. */
export const IPSEC_KEYS_SECRET = {
  namespace: "kube-system",
  name: "clustermesh-ipsec-keys",
  key: "keys",
} as const;
