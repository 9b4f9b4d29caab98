/**
 * etcd users, roles and auth, as Cilium's etcdinit sets them up
 * (https://github.com/cilium/cilium/blob/main/pkg/kvstore/etcdinit/init.go).
 * etcd runs with --client-cert-auth, so a client's user is its certificate's CN.
 *
 *   root, admin-<cluster>   → role root (everything; admin is the apiserver's own cert)
 *   remote, remote-<peer>…  → role remote: read-only cilium/.heartbeat, cilium/state/,
 *                             cilium/cluster-config/<cluster>, cilium/synced/<cluster>/, and
 *                             cilium/.has-cluster-config (Cilium 1.15 agents read it first; 1.15's
 *                             remote role could read every key, 1.16+ dropped the key)
 *   local-<cluster>         → role local: read-only cilium/.heartbeat, cilium/cache/,
 *                             cilium/cluster-config/, cilium/synced/
 *
 * Idempotent: safe on an etcd that is already initialised (existing users/roles are kept, missing
 * grants added), so the apiserver can run it at every start.
 */
import type { Etcd3 } from "etcd3";
import { etcdUsers } from "../certs/users.js";
import { HAS_CLUSTER_CONFIG_KEY } from "../lib/kvstore/paths.js";
import type { Logger } from "../lib/log.js";

export interface ReadGrant {
  /** Key or prefix. */
  key: string;
  /** true: every key starting with `key`; false: exactly `key`. */
  prefix: boolean;
}

export interface EtcdAccessPlan {
  roles: { name: string; reads: ReadGrant[] }[];
  users: { name: string; role: string }[];
}

/** The users and roles of one cluster's etcd. Pure. */
export function etcdAccessPlan(clusterName: string, remotePeers: readonly string[] = []): EtcdAccessPlan {
  const remoteUsers = [
    "remote",
    etcdUsers.remote(clusterName),
    ...remotePeers.map((peer) => etcdUsers.remote(peer)),
  ];
  return {
    roles: [
      { name: "root", reads: [] },
      {
        name: "remote",
        reads: [
          { key: "cilium/.heartbeat", prefix: true },
          { key: "cilium/state/", prefix: true },
          { key: `cilium/cluster-config/${clusterName}`, prefix: false },
          { key: `cilium/synced/${clusterName}/`, prefix: true },
          { key: HAS_CLUSTER_CONFIG_KEY, prefix: false },
        ],
      },
      {
        name: "local",
        reads: [
          { key: "cilium/.heartbeat", prefix: true },
          { key: "cilium/cache/", prefix: true },
          { key: "cilium/cluster-config/", prefix: true },
          { key: "cilium/synced/", prefix: true },
        ],
      },
    ],
    users: [
      { name: "root", role: "root" },
      { name: etcdUsers.admin(clusterName), role: "root" },
      ...[...new Set(remoteUsers)].map((name) => ({ name, role: "remote" })),
      { name: etcdUsers.local(clusterName), role: "local" },
    ],
  };
}

/** etcd's range end for "every key with this prefix" (clientv3.GetPrefixRangeEnd). */
export function prefixRangeEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function alreadyExists(error: unknown): boolean {
  return error instanceof Error && /already exists|already granted/.test(error.message);
}

/** Applies the plan and enables auth. The client must be allowed to (root user, or auth still off). */
export async function initEtcdAccess(client: Etcd3, plan: EtcdAccessPlan, log: Logger): Promise<void> {
  for (const role of plan.roles) {
    try {
      await client.auth.roleAdd({ name: role.name });
      log.info({ role: role.name }, "created etcd role");
    } catch (error) {
      if (!alreadyExists(error)) throw error;
    }
    for (const grant of role.reads) {
      await client.auth.roleGrantPermission({
        name: role.name,
        perm: {
          permType: "Read",
          key: Buffer.from(grant.key),
          range_end: grant.prefix ? prefixRangeEnd(grant.key) : Buffer.alloc(0),
        },
      });
    }
  }
  for (const user of plan.users) {
    try {
      await client.auth.userAdd({ name: user.name, options: { no_password: true } });
      log.info({ user: user.name }, "created etcd user");
    } catch (error) {
      if (!alreadyExists(error)) throw error;
    }
    const { roles } = await client.auth.userGet({ name: user.name });
    if (!roles.includes(user.role)) await client.auth.userGrantRole({ user: user.name, role: user.role });
  }
  // etcd 3.4 has no AuthStatus; AuthEnable on an enabled etcd is a logged no-op.
  await client.auth.authEnable();
  log.debug("etcd authentication enabled");
}

/**
 * Writes `cilium/.has-cluster-config` ("true", no lease) like Cilium 1.15's etcd-init
 * (pkg/kvstore/etcdinit/init.go putHasConfigKey): a Cilium 1.15 agent reads it first and, when it
 * is present, waits for our cluster config instead of connecting without one. Written only when
 * missing, so a restart changes nothing.
 */
export async function markClusterConfigRequired(client: Etcd3): Promise<void> {
  await client
    .if(HAS_CLUSTER_CONFIG_KEY, "Create", "==", 0)
    .then(client.put(HAS_CLUSTER_CONFIG_KEY).value("true"))
    .commit();
}
