/**
 * The Prometheus metric names the programs export: one list, so dashboards, tests and the
 * documentation read the same names the code registers. Where Cilium's agent exports the same
 * measure, the agent uses Cilium's name, type and labels (`cilium_clustermesh_…`, from
 * https://github.com/cilium/cilium/blob/v1.18.4/pkg/clustermesh/common/metrics.go and
 * https://github.com/cilium/cilium/blob/v1.18.4/pkg/clustermesh/metrics.go); the rest are its own
 * (`clustermesh_…`). The clustermesh-apiserver's carry Cilium's namespace
 * (`cilium_clustermesh_apiserver_…`).
 */

/** The agent's metrics (served on --metrics-address /metrics). */
export const AGENT_METRICS = {
  agentCniRequestsTotal: "clustermesh_agent_cni_requests_total",
  agentDatapathReconcilesTotal: "clustermesh_agent_datapath_reconciles_total",
  agentDatapathMapOpsTotal: "clustermesh_agent_datapath_map_ops_total",
  agentSkippedObjectsTotal: "clustermesh_agent_skipped_objects_total",
  agentReady: "clustermesh_agent_ready",
  agentEndpoints: "clustermesh_agent_endpoints",
  agentServices: "clustermesh_agent_services",
  agentIpcacheEntries: "clustermesh_agent_ipcache_entries",
  agentIdentities: "clustermesh_agent_identities",
  datapathPacketsTotal: "clustermesh_datapath_packets_total",
  /** packets network policy dropped, by pod, direction and rule ("default-deny": no rule matched) */
  policyDropsTotal: "clustermesh_policy_drops_total",
  metricsCollectErrorsTotal: "clustermesh_metrics_collect_errors_total",
  encryptionPeers: "clustermesh_encryption_peers",
  encryptionSkippedPeersTotal: "clustermesh_encryption_skipped_peers_total",
  encryptionDropPrefixes: "clustermesh_encryption_drop_prefixes",
  encryptionIpsecSas: "clustermesh_encryption_ipsec_sas",
  // Cilium's (v1.18.4 labels: source_cluster, source_node_name[, target_cluster])
  remoteClusters: "cilium_clustermesh_remote_clusters",
  remoteClusterReadinessStatus: "cilium_clustermesh_remote_cluster_readiness_status",
  remoteClusterFailures: "cilium_clustermesh_remote_cluster_failures",
  remoteClusterLastFailureTs: "cilium_clustermesh_remote_cluster_last_failure_ts",
  remoteClusterNodes: "cilium_clustermesh_remote_cluster_nodes",
  globalServices: "cilium_clustermesh_global_services",
  // Cilium 1.19+ (pkg/clustermesh/metrics.go), with the 1.18 label set of their siblings
  remoteClusterServices: "cilium_clustermesh_remote_cluster_services",
  remoteClusterEndpoints: "cilium_clustermesh_remote_cluster_endpoints",
  // histograms none of the peers publish
  cniRequestDurationSeconds: "clustermesh_agent_cni_request_duration_seconds",
  remoteClusterInitialSyncSeconds: "clustermesh_agent_remote_cluster_initial_sync_seconds",
  remoteClusterChangeToDatapathSeconds: "clustermesh_agent_remote_cluster_change_to_datapath_seconds",
  // ours, per remote cluster
  agentRemoteClusterConnected: "clustermesh_agent_remote_cluster_connected",
  agentRemoteClusterBackendsWithdrawn: "clustermesh_agent_remote_cluster_backends_withdrawn",
  agentRemoteClusterEntries: "clustermesh_agent_remote_cluster_entries",
  agentRemoteClusterRejectedTotal: "clustermesh_agent_remote_cluster_rejected_total",
  agentRemoteClusterRejectedEntries: "clustermesh_agent_remote_cluster_rejected_entries",
  agentRemoteClusterIgnoredEntries: "clustermesh_agent_remote_cluster_ignored_entries",
} as const;

/** Prefix of every clustermesh-apiserver metric, as in Cilium's clustermesh-apiserver. */
export const APISERVER_METRIC_NAMESPACE = "cilium_clustermesh_apiserver";

/** The clustermesh-apiserver's metrics, without the namespace (served on --readyz-address /metrics). */
export const APISERVER_METRICS = {
  kvstoreKeys: "kvstore_keys",
  kvstoreWritesTotal: "kvstore_writes_total",
  kvstoreDeletesTotal: "kvstore_deletes_total",
  kvstoreSkippedUnchangedTotal: "kvstore_skipped_unchanged_total",
  kvstoreErrorsTotal: "kvstore_errors_total",
  kvstoreRepairsTotal: "kvstore_repairs_total",
  kvstoreCanaryRepairsTotal: "kvstore_canary_repairs_total",
  kvstoreInitialSyncCompleted: "kvstore_initial_sync_completed",
  k8sEventsTotal: "k8s_events_total",
  conversionErrorsTotal: "conversion_errors_total",
  heartbeatsTotal: "heartbeats_total",
  leases: "leases",
  ready: "ready",
  /** Cilium's (clustermesh-apiserver/syncstate): seconds from start until every kind was synced. */
  bootstrapSeconds: "bootstrap_seconds",
  metricsCollectErrorsTotal: "metrics_collect_errors_total",
} as const;

/** Prefix of the clustermesh-apiserver's KVStoreMesh metrics, as in Cilium's kvstoremesh. */
export const KVSTOREMESH_METRIC_NAMESPACE = "cilium_kvstoremesh";

/**
 * KVStoreMesh metrics without the namespace. Cilium's names and labels where Cilium has them
 * (pkg/clustermesh/common/metrics.go, pkg/kvstore/store/metrics.go): source_cluster = this cluster,
 * target_cluster = the cached remote, scope = the cache prefix ("cache/nodes/v1").
 */
export const KVSTOREMESH_METRICS = {
  remoteClusters: "remote_clusters",
  remoteClusterReadinessStatus: "remote_cluster_readiness_status",
  remoteClusterFailures: "remote_cluster_failures",
  remoteClusterLastFailureTs: "remote_cluster_last_failure_ts",
  kvstoreSyncQueueSize: "kvstore_sync_queue_size",
  kvstoreSyncErrorsTotal: "kvstore_sync_errors_total",
  kvstoreInitialSyncCompleted: "kvstore_initial_sync_completed",
  // ours
  remoteClusterCachedEntries: "remote_cluster_cached_entries",
  remoteClusterRejectedTotal: "remote_cluster_rejected_total",
  remoteClusterRejectedEntries: "remote_cluster_rejected_entries",
} as const;
