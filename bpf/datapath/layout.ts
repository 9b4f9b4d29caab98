/**
 * Byte layouts of the C structs in bpf/include/dp_types.h. The codecs read and write at these
 * offsets, and layout.root.test.ts compares every entry with the compiled objects' BTF, so the
 * C side and the TypeScript side cannot drift apart unnoticed.
 */
export interface StructSpec {
  size: number;
  members: Record<string, number>;
}

export const STRUCT_LAYOUTS = {
  lb_service_key: {
    size: 24,
    members: { address: 0, dport: 16, backend_slot: 18, proto: 20, family: 21, scope: 22, pad: 23 },
  },
  lb_service_value: {
    size: 12,
    members: { backend_id: 0, count: 4, rev_nat_index: 6, flags: 8, flags2: 9, pad: 10 },
  },
  lb_backend: {
    size: 24,
    members: { address: 0, port: 16, proto: 18, flags: 19, cluster_id: 20, zone: 22, family: 23 },
  },
  lb_rev_nat: { size: 20, members: { address: 0, port: 16, family: 18, pad: 19 } },
  ct_key: {
    size: 40,
    members: { saddr: 0, daddr: 16, sport: 32, dport: 34, proto: 36, family: 37, direction: 38, pad: 39 },
  },
  ct_entry: { size: 16, members: { backend_id: 0, rev_nat_index: 4, flags: 6, last_seen_ns: 8 } },
  ipcache_key: { size: 24, members: { prefixlen: 0, cluster_id: 4, pad: 6, family: 7, address: 8 } },
  ipcache_value: {
    size: 24,
    members: { identity: 0, tunnel_endpoint: 4, flags: 20, encrypt_key: 21, cluster_id: 22 },
  },
  endpoint_key: { size: 20, members: { address: 0, family: 16, pad: 17 } },
  endpoint_info: { size: 24, members: { ifindex: 0, identity: 4, mac: 8, node_mac: 14, flags: 20 } },
  dp_config: { size: 16, members: { tunnel_ifindex: 0, flags: 4, world_identity: 8, pad: 12 } },
  dp_node_config: { size: 16, members: { node_ip4: 0, underlay_ifindex: 4, host_identity: 8, flags: 12 } },
  nodeport_nat: {
    size: 40,
    members: {
      client: 0,
      client_port: 16,
      snat_port: 18,
      node_port: 20,
      pad: 22,
      backend_id: 24,
      last_seen_ns: 32,
    },
  },
  dp_trace: {
    size: 24,
    members: {
      tx_tunnel_id: 0,
      tx_remote_ip4: 4,
      tx_count: 8,
      rx_identity: 12,
      rx_remote_ip4: 16,
      rx_count: 20,
    },
  },
  sock_revnat_key: { size: 32, members: { cookie: 0, address: 8, port: 24, family: 26, pad: 27 } },
  sock_revnat_value: { size: 20, members: { address: 0, port: 16, rev_nat_index: 18 } },
  dp_metric_value: { size: 16, members: { packets: 0, bytes: 8 } },
  policy_key: {
    size: 12,
    members: { identity: 0, policy_id: 4, port: 6, proto: 8, direction: 9, level: 10, pad: 11 },
  },
  policy_entry: { size: 8, members: { verdict: 0, pad: 1, pad2: 2, rule: 4 } },
  policy_drop_key: { size: 8, members: { policy_id: 0, direction: 2, pad: 3, rule: 4 } },
  policy_ct_entry: { size: 8, members: { last_seen: 0, revision: 4 } },
} as const satisfies Record<string, StructSpec>;
