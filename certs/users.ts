/** etcd user names (= client certificate CNs) as Cilium's clustermesh-apiserver defines them. */
export const etcdUsers = {
  admin: (cluster: string) => `admin-${cluster}`,
  /** Used by other clusters' agents; "remote" in Cilium's legacy/migration auth modes. */
  remote: (localCluster?: string) => (localCluster ? `remote-${localCluster}` : "remote"),
  local: (cluster: string) => `local-${cluster}`,
} as const;
