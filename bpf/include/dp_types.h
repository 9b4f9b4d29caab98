/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Map key/value layouts shared by every datapath object. The TypeScript codecs in
 * bpf/datapath/codecs.ts mirror these byte for byte; bpf/datapath/layout.test.ts checks
 * sizes and member offsets against the compiled objects' BTF, so change both together.
 * Addresses are 16 bytes so IPv6 fits without a layout change; IPv4 uses the first 4.
 * Multi-byte addresses and ports are in network byte order, everything else host order.
 */
#ifndef DP_TYPES_H
#define DP_TYPES_H

#define DP_FAMILY_IPV4 1
#define DP_FAMILY_IPV6 2

/* The 16-byte member must come first: "= {}" zero-initialises only a union's first member, and
 * clang treats the other bytes as undefined, which put garbage into map keys built from it. */
union dp_addr {
	__u32 ip6_words[4];
	__u8 ip6[16];
	__be32 ip4;
};

/* cm_services: slot 0 is the frontend ("master") entry, slots 1..count point at backends. */
struct lb_service_key {
	union dp_addr address; /* frontend VIP */
	__be16 dport;
	__u16 backend_slot;
	__u8 proto;
	__u8 family;
	__u8 scope;
	__u8 pad;
};

struct lb_service_value {
	__u32 backend_id;    /* slot > 0: key in cm_backends; slot 0: unused */
	__u16 count;         /* slot 0: number of backend slots */
	__u16 rev_nat_index; /* key in cm_rev_nat */
	__u8 flags;
	__u8 flags2;
	__u16 pad;
};

/* cm_backends, key __u32 backend_id */
struct lb_backend {
	union dp_addr address;
	__be16 port;
	__u8 proto;
	__u8 flags; /* LB_BACKEND_* */
	__u16 cluster_id;
	__u8 zone;
	__u8 family;
};

#define LB_BACKEND_ACTIVE 0
#define LB_BACKEND_TERMINATING 1

/* cm_rev_nat, key __u16 rev_nat_index: what replies are rewritten back to. */
struct lb_rev_nat {
	union dp_addr address;
	__be16 port;
	__u8 family;
	__u8 pad;
};

#define CT_DIR_SERVICE 0 /* client -> VIP tuple, value holds the chosen backend */
#define CT_DIR_REPLY 1   /* backend -> client tuple, value holds the rev_nat_index */
#define CT_LIFETIME_NONTCP_NS (60ULL * 1000000000ULL)

/* cm_conntrack (LRU) */
struct ct_key {
	union dp_addr saddr;
	union dp_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u8 direction;
	__u8 pad;
};

struct ct_entry {
	__u32 backend_id;
	__u16 rev_nat_index;
	__u16 flags;
	__u64 last_seen_ns;
};

/* cm_ipcache (LPM trie). prefixlen counts the 32 bits of cluster_id/pad/family too,
 * so an IPv4 /24 is stored with prefixlen 32 + 24 (as in Cilium). */
struct ipcache_key {
	__u32 prefixlen;
	__u16 cluster_id;
	__u8 pad;
	__u8 family;
	union dp_addr address;
};

#define IPCACHE_STATIC_PREFIX_BITS 32

struct ipcache_value {
	__u32 identity;
	union dp_addr tunnel_endpoint;
	__u8 flags; /* IPCACHE_F_* */
	__u8 encrypt_key;
	/* a node's own entry: the cluster that owns the node (tunnel ingress checks the cluster bits
	 * of the identities it sends against it); 0 = not known. Was padding: older pins stay valid. */
	__u16 cluster_id;
};

#define IPCACHE_F_HAS_TUNNEL 1
#define IPCACHE_F_TUNNEL_IPV6 2
#define IPCACHE_F_REMOTE_CLUSTER 4

/* cm_endpoints: pods on this node. */
struct endpoint_key {
	union dp_addr address;
	__u8 family;
	__u8 pad[3];
};

struct endpoint_info {
	__u32 ifindex;      /* host-side veth */
	__u32 identity;
	__u8 mac[6];        /* pod's eth0 */
	__u8 node_mac[6];   /* host-side veth */
	__u32 flags;        /* EP_F_*: network policy (dp_policy.h); the member existed, so pins keep their size */
};

/* endpoint_info.flags: whether each direction is enforced, which cm_policy key levels exist for the
 * endpoint (so a packet probes only those), and the endpoint's policy slot. */
#define EP_F_INGRESS_ENFORCED (1U << 0)
#define EP_F_EGRESS_ENFORCED (1U << 1)
#define EP_F_INGRESS_LEVELS_SHIFT 2 /* 10 bits: POLICY_LEVEL_* for the peer identity, then +5 for identity 0 */
#define EP_F_EGRESS_LEVELS_SHIFT 12
#define EP_F_LEVELS_MASK 0x3ff
#define EP_F_POLICY_ID_SHIFT 22 /* 10 bits: 1..1023 (a node runs far fewer pods) */
#define POLICY_SLOTS 1024      /* cm_policy_rev: one revision per slot (0 unused) */

/* cm_policy (hash): one verdict per (endpoint policy slot, direction, peer identity, protocol, port
 * level). A packet probes at most 10 exact keys, most specific first: for the peer identity and
 * then identity 0, (proto, port), (proto, 16-port block), (proto, 256-port block), (proto, any
 * port), (any protocol); the agent writes only the levels an endpoint uses (EP_F_*_LEVELS) and
 * resolves "deny wins" ahead of time (bpf/datapath/policy-entries.ts), so the first hit is the
 * verdict. A port range becomes aligned blocks plus single ports: 1000-2000 is 26 keys. */
#define POLICY_DIR_INGRESS 0
#define POLICY_DIR_EGRESS 1
#define POLICY_LEVEL_PORT 0     /* port = the destination port */
#define POLICY_LEVEL_BLOCK16 1  /* port = destination port & 0xfff0 */
#define POLICY_LEVEL_BLOCK256 2 /* port = destination port & 0xff00 */
#define POLICY_LEVEL_PROTO 3    /* port = 0: any port of the protocol */
#define POLICY_LEVEL_ANY 4      /* proto = 0, port = 0 */
#define POLICY_LEVELS 5
#define POLICY_ALLOW 1
#define POLICY_DENY 2

struct policy_key {
	__u32 identity; /* peer: source for ingress, destination for egress; 0 = any */
	__u16 policy_id;
	__u16 port; /* host order, see POLICY_LEVEL_* */
	__u8 proto;
	__u8 direction;
	__u8 level;
	__u8 pad;
};

struct policy_entry {
	__u8 verdict; /* POLICY_ALLOW / POLICY_DENY */
	__u8 pad;
	__u16 pad2;
	__u32 rule; /* the agent's number of the rule that produced it: key of cm_policy_drops */
};

/* cm_policy_drops (per-CPU hash): packets denied, by endpoint slot, direction and rule
 * (rule 0: no entry matched, the default deny of an enforced direction). */
struct policy_drop_key {
	__u16 policy_id;
	__u8 direction;
	__u8 pad;
	__u32 rule;
};

/* cm_policy_ct (LRU), keyed by struct ct_key in a canonical form (dp_policy.h: policy_ct_key): a
 * connection an endpoint's policy allowed, in either direction; its later packets and its replies
 * skip the policy lookup. ICMP echo uses the echo id as both ports.
 * revision: the endpoint slot's policy revision (cm_policy_rev) when the connection was last judged,
 * and whether the endpoint opened it (POLICY_CT_F_EGRESS). When a policy narrows, the agent bumps the
 * slot's revision instead of scanning this map: a packet that finds an entry of an older revision
 * has its connection judged again, as it was opened, and the entry refreshed or the packet dropped.
 * 8 bytes, as the entry was before (a u64 last_seen_ns): pins keep their size. */
struct policy_ct_entry {
	__u32 last_seen; /* bpf_ktime_get_coarse_ns() >> POLICY_CT_TIME_SHIFT */
	__u32 revision;  /* POLICY_CT_REV_MASK | POLICY_CT_F_EGRESS */
};

#define POLICY_CT_TIME_SHIFT 30 /* ~1.07 s units: a u32 lasts 146 years of uptime */
#define POLICY_CT_LIFETIME_TCP ((6ULL * 3600 * 1000000000ULL) >> POLICY_CT_TIME_SHIFT) /* Cilium's ct-tcp default */
#define POLICY_CT_LIFETIME_NONTCP ((60ULL * 1000000000ULL) >> POLICY_CT_TIME_SHIFT)
#define POLICY_CT_REV_MASK 0x7fffffffU
#define POLICY_CT_F_EGRESS 0x80000000U /* the endpoint opened the connection (egress request) */
#define POLICY_QUICK_LEVELS 2 /* dp_policy.h: the quick path probes at most this many levels per direction */

/* cm_config, single entry at key 0 */
struct dp_config {
	__u32 tunnel_ifindex;
	__u32 flags; /* DP_CONFIG_* */
	__u32 world_identity;
	__u32 pad;
};

#define DP_CONFIG_TRACE 1 /* record the last tunnel tx/rx in cm_trace (tests, debugging) */

/* cm_node, single entry at key 0: this node on the underlay. A separate map rather than more
 * members in dp_config, so maps pinned by an older agent stay compatible across an upgrade. */
struct dp_node_config {
	__be32 node_ip4;        /* NodePort frontends on the underlay; SNAT source of NodePort flows */
	__u32 underlay_ifindex; /* where translated NodePort replies leave the node */
	__u32 host_identity;    /* tunnel id of packets the node's own stack sends to remote pods */
	__u32 flags;
};

/* NodePort SNAT source ports: above the kernel's default ephemeral range (32768-60999), so a
 * translated flow never takes the port of one of the node's own connections. */
#define NODEPORT_SNAT_MIN 61000
#define NODEPORT_SNAT_MAX 65535
#define NODEPORT_SNAT_TRIES 8

/* cm_nodeport (LRU), keyed by struct ct_key: NodePort flows from clients outside the node, which are
 * DNATed to a backend and SNATed to the node so that replies come back through it.
 *   CT_DIR_SERVICE  client -> nodeIP:nodePort        : backend_id, snat_port
 *   CT_DIR_REPLY    backend -> nodeIP:snat_port      : client, client_port, node_port */
struct nodeport_nat {
	union dp_addr client;
	__be16 client_port;
	__be16 snat_port;
	__be16 node_port;
	__u16 pad;
	__u32 backend_id;
	__u64 last_seen_ns;
};

/* cm_trace, single entry at key 0: lets tests see what test-run cannot return. */
struct dp_trace {
	__u32 tx_tunnel_id;
	__be32 tx_remote_ip4;
	__u32 tx_count;
	__u32 rx_identity;
	__be32 rx_remote_ip4;
	__u32 rx_count;
};

/* cm_sock_revnat (LRU): socket LB rewrote a VIP to this backend for this socket. */
struct sock_revnat_key {
	__u64 cookie;
	union dp_addr address;
	__be16 port;
	__u8 family;
	__u8 pad[5];
};

struct sock_revnat_value {
	union dp_addr address;
	__be16 port;
	__u16 rev_nat_index;
};

/* cm_metrics (per-CPU array) value; the key is an enum dp_metric. */
struct dp_metric_value {
	__u64 packets;
	__u64 bytes;
};

enum dp_metric {
	METRIC_FWD_STACK = 0,       /* handed to the kernel's routing */
	METRIC_FWD_LOCAL = 1,       /* redirected to a local endpoint */
	METRIC_FWD_TUNNEL = 2,      /* encapsulated to a remote node */
	METRIC_LB_DNAT = 3,         /* per-packet service DNAT */
	METRIC_LB_REV_NAT = 4,      /* reply rewritten back to the VIP */
	METRIC_SOCK_LB = 5,         /* connect/sendmsg rewritten at the socket */
	METRIC_TUNNEL_RX = 6,       /* decapsulated and delivered */
	METRIC_CT_NEW = 7,
	METRIC_CT_HIT = 8,
	METRIC_NODEPORT_DNAT = 9,     /* NodePort from outside the node: DNAT + SNAT at the underlay */
	METRIC_NODEPORT_REV_NAT = 10, /* NodePort reply rewritten back to nodeIP:nodePort -> client */
	METRIC_TUNNEL_HOST_TX = 11,   /* the node's own traffic given a tunnel key on the VXLAN egress */
	METRIC_FWD_NETDEV = 12,       /* redirected out of a device the routing table chose (underlay, WireGuard, ipsec0) */
	METRIC_POLICY_FORGED_IDENTITY = 13, /* tunnel identity of another cluster than the sending node's: taken as world */
	METRIC_MASQ_SNAT = 14,        /* pod egress leaving the cluster's pod network SNATed to the node IP (dp_masq.h) */
	METRIC_MASQ_REV_NAT = 15,     /* its reply restored to the pod's address */
	METRIC_DROP_NO_BACKEND = 16,    /* service has zero backends */
	METRIC_DROP_BACKEND_SLOT = 17,  /* slot or backend entry missing */
	METRIC_DROP_INVALID = 18,       /* truncated/malformed headers */
	METRIC_DROP_TUNNEL_KEY = 19,    /* set/get tunnel key failed */
	METRIC_DROP_NO_CONFIG = 20,     /* tunnel needed but no tunnel device configured */
	METRIC_DROP_CSUM = 21,          /* rewrite helper failed */
	METRIC_DROP_POLICY = 22,
	METRIC_DROP_NO_TUNNEL_ENDPOINT = 23, /* VXLAN egress to an address the ipcache cannot tunnel */
	METRIC_DROP_SNAT_PORTS = 24,         /* no free NodePort SNAT port for the backend */
	METRIC_DROP_NO_ROUTE = 26,           /* NodePort backend without a tunnel and without a usable route */
	METRIC_MAX = 32,
};

#endif
