/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Masquerading of pod egress to addresses outside the mesh (hosts on the underlay, and other
 * clusters' node IPs and NodePorts until the mesh knows them), as Cilium's BPF masquerading
 * (https://github.com/cilium/cilium/blob/v1.18.4/bpf/lib/nat.h): from-pod SNATs the pod's
 * address:port to nodeIP:port and sends the packet out of the device the routing table picks;
 * the reply to nodeIP:port reaches from-netdev, which restores the pod's address:port and
 * delivers it to the pod. Without it the remote host answers a pod IP it has no route for (a
 * cluster's pod CIDRs are routed only inside that cluster and the clusters connected to it), and
 * the connection never opens. An address the ipcache knows (a node of this or of a connected
 * cluster) is not masqueraded: it routes the pod CIDRs back through the tunnel and sees the pod's
 * own address and identity; a flow masqueraded before its destination became known stays so.
 *
 * Only TCP and UDP over IPv4 (the underlay is IPv4); ICMP is left to the kernel. Ports come from
 * the NodePort SNAT range (61000-65535, above the kernel's ephemeral range): from-netdev already
 * sends replies on that range to the NodePort reverse translation, and a masquerade reply is tried
 * there next. A claim checks both maps, so a reply tuple is never in both.
 */
#ifndef DP_MASQ_H
#define DP_MASQ_H

#include "dp_forward.h"

/* cm_masq (LRU), keyed by struct ct_key:
 *   CT_DIR_SERVICE  pod:port -> remote:port      : port = the SNAT port on the node IP
 *   CT_DIR_REPLY    remote:port -> nodeIP:port   : addr, port = the pod's */
struct masq_nat {
	union dp_addr addr;
	__be16 port;
	__u16 pad;
	__u32 pad2;
	__u64 last_seen_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ct_key);
	__type(value, struct masq_nat);
	DP_PIN;
} cm_masq SEC(".maps");

/* Whether from-pod asks masq_snat about pkt: a pod's TCP/UDP over IPv4 that the datapath did not
 * deliver to a local endpoint or a tunnel (checked before this is asked), not for this node. */
static __always_inline int masq_wanted(const struct packet *pkt, const struct dp_node_config *node)
{
	return node && node->node_ip4 && node->underlay_ifindex && pkt->family == DP_FAMILY_IPV4 &&
	       pkt->has_ports && pkt->daddr.ip4 != node->node_ip4;
}

static __always_inline __be16 masq_claim_port(const struct packet *pkt, const union dp_addr *node_addr)
{
	struct ct_key reply_key = {};
	struct masq_nat reply = {};

	reply.addr = pkt->saddr;
	reply.port = pkt->sport;
	reply.last_seen_ns = bpf_ktime_get_ns();
	for (int attempt = 0; attempt < NODEPORT_SNAT_TRIES; attempt++) {
		__be16 port = bpf_htons(NODEPORT_SNAT_MIN +
					bpf_get_prandom_u32() % (NODEPORT_SNAT_MAX - NODEPORT_SNAT_MIN + 1));

		ct_key_fill(&reply_key, &pkt->daddr, node_addr, pkt->dport, port, pkt, CT_DIR_REPLY);
		if (bpf_map_lookup_elem(&cm_nodeport, &reply_key))
			continue;
		if (bpf_map_update_elem(&cm_masq, &reply_key, &reply, BPF_NOEXIST) == 0)
			return port;
	}
	return 0;
}

/* SNATs pkt to nodeIP:port (an existing flow keeps its port) and sends it out of the device the
 * routing table has for its destination: the stack would drop a packet from its own address
 * arriving on a veth as martian. Only a TCP SYN (or any UDP datagram) opens a mapping: a pod's
 * TCP segment without one is a reply to a connection opened towards the pod (a NodePort flow SNATed
 * by another node, a host's connection), which must leave with the pod's address. Returns -1 for
 * such a segment (the caller continues), otherwise the verdict. */
static __always_inline int masq_snat(struct __sk_buff *skb, struct packet *pkt, const struct dp_node_config *node)
{
	struct ct_key flow_key = {};
	struct ct_key reply_key = {};
	struct masq_nat *flow;
	struct masq_nat entry = {};
	union dp_addr node_addr = {};
	__be16 port = 0;
	__u64 now = bpf_ktime_get_ns();

	node_addr.ip4 = node->node_ip4;
	ct_key_fill(&flow_key, &pkt->saddr, &pkt->daddr, pkt->sport, pkt->dport, pkt, CT_DIR_SERVICE);
	flow = bpf_map_lookup_elem(&cm_masq, &flow_key);
	if (flow) {
		port = flow->port;
		flow->last_seen_ns = now;
		/* the LRU may have evicted the reply entry alone: restore it, or replies are lost */
		ct_key_fill(&reply_key, &pkt->daddr, &node_addr, pkt->dport, port, pkt, CT_DIR_REPLY);
		if (!bpf_map_lookup_elem(&cm_masq, &reply_key)) {
			entry.addr = pkt->saddr;
			entry.port = pkt->sport;
			entry.last_seen_ns = now;
			bpf_map_update_elem(&cm_masq, &reply_key, &entry, BPF_ANY);
		}
	} else {
		if (pkt->proto == IPPROTO_TCP_ && !is_tcp_open(pkt))
			return -1;
		if (lookup_ipcache(&pkt->daddr, pkt->family))
			return -1; /* inside the mesh: routed back to the pod as it is */
		port = masq_claim_port(pkt, &node_addr);
		if (!port) {
			count_metric(METRIC_DROP_SNAT_PORTS, skb->len);
			return TC_ACT_SHOT;
		}
		entry.port = port;
		entry.last_seen_ns = now;
		bpf_map_update_elem(&cm_masq, &flow_key, &entry, BPF_ANY);
	}
	if (rewrite_addr_port(skb, pkt, 1, &node_addr, port)) {
		count_metric(METRIC_DROP_CSUM, skb->len);
		return TC_ACT_SHOT;
	}
	pkt->saddr = node_addr;
	pkt->sport = port;
	count_metric(METRIC_MASQ_SNAT, skb->len);

	struct bpf_fib_lookup fib = {
		.family = 2, /* AF_INET */
		.ipv4_src = pkt->saddr.ip4,
		.ipv4_dst = pkt->daddr.ip4,
		.ifindex = skb->ifindex,
	};
	int rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);

	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
		count_metric(METRIC_DROP_NO_ROUTE, skb->len);
		return TC_ACT_SHOT;
	}
	count_metric(METRIC_FWD_NETDEV, skb->len);
	return bpf_redirect_neigh(fib.ifindex, NULL, 0, 0);
}

/* Restores a masqueraded flow's reply (remote -> nodeIP:port) to remote -> pod:port and delivers
 * it. Returns -1 when pkt is not such a reply (the caller continues), otherwise the verdict. */
static __always_inline int masq_rev_nat(struct __sk_buff *skb, struct packet *pkt)
{
	struct ct_key key = {};
	struct masq_nat *nat;
	struct endpoint_info *ep;
	union dp_addr pod;
	__be16 pod_port;

	ct_key_fill(&key, &pkt->saddr, &pkt->daddr, pkt->sport, pkt->dport, pkt, CT_DIR_REPLY);
	nat = bpf_map_lookup_elem(&cm_masq, &key);
	if (!nat)
		return -1;
	nat->last_seen_ns = bpf_ktime_get_ns();
	pod = nat->addr;
	pod_port = nat->port;
	if (rewrite_addr_port(skb, pkt, 0, &pod, pod_port)) {
		count_metric(METRIC_DROP_CSUM, skb->len);
		return TC_ACT_SHOT;
	}
	pkt->daddr = pod;
	pkt->dport = pod_port;
	count_metric(METRIC_MASQ_REV_NAT, skb->len);
	ep = lookup_endpoint(&pod, pkt->family);
	if (!ep)
		return TC_ACT_OK; /* the pod is gone: the stack answers or drops */
	return redirect_to_endpoint(skb, ep, IDENTITY_WORLD);
}

#endif
