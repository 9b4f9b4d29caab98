/**
 * MCS-API service exports (`cilium/state/serviceexports/v1/<cluster>/...`). We export none, but like
 * Cilium >= 1.17's clustermesh-apiserver with MCS-API off we still mark the kind synced: our cluster
 * config says `serviceExportsEnabled: false`, and Cilium's KVStoreMesh (and MCS-enabled agents) wait
 * for this canary whenever that field is present — without it a KVStoreMesh never finishes syncing
 * our cluster (until its global ready timeout). Cilium: pkg/clustermesh/mcsapi/serviceexportsync.go
 * ("We pretend that service exports are synced even if the feature is disabled").
 * The store also deletes service exports a previous writer left behind.
 */
import type { Etcd3 } from "etcd3";
import type { LeaseManager } from "../lib/kvstore/leases.js";
import { SERVICE_EXPORTS_PREFIX } from "../lib/kvstore/paths.js";
import { SyncStore } from "../lib/kvstore/sync-store.js";
import type { Logger } from "../lib/log.js";

/** Starts the (empty) service-exports store and marks it synced, which writes its canary. */
export async function startServiceExportsStore(
  etcd: Etcd3,
  leases: LeaseManager,
  clusterName: string,
  log: Logger,
): Promise<SyncStore> {
  const store = new SyncStore({
    client: etcd,
    leases,
    prefix: `${SERVICE_EXPORTS_PREFIX}/${clusterName}`,
    canary: { clusterName, syncedKey: SERVICE_EXPORTS_PREFIX },
    log: log.child({ store: "serviceexports" }),
  });
  await store.start();
  store.synced();
  return store;
}
