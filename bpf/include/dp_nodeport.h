/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * NodePort for clients outside the node (SNAT mode, as Cilium's default): from-netdev DNATs
 * nodeIP:nodePort to a backend and SNATs the client to nodeIP:snatPort, so the backend replies to
 * this node wherever it runs. The reply reaches one of three hooks: from-pod (local backend), the
 * tunnel ingress, or from-netdev (a remote backend's reply routed over the underlay); each calls
 * nodeport_rev_nat and sends the restored reply out of the underlay device.
 */
#ifndef DP_NODEPORT_H
#define DP_NODEPORT_H

#include "dp_forward.h"

static __always_inline int nodeport_is_snat_port(__be16 port)
{
	__u16 host_port = bpf_ntohs(port);

	return host_port >= NODEPORT_SNAT_MIN; /* NODEPORT_SNAT_MAX is the top of the port space */
}

/* Whether pkt may be the reply of a NodePort flow: to this node's IP, on a SNAT port. One compare
 * for everything else, so the hooks that call this stay cheap for ordinary traffic. */
static __always_inline int nodeport_maybe_reply(const struct packet *pkt, const struct dp_node_config *node)
{
	return node && pkt->family == DP_FAMILY_IPV4 && pkt->has_ports && pkt->daddr.ip4 == node->node_ip4 &&
	       nodeport_is_snat_port(pkt->dport);
}

/*
 * Rewrites a reply backend:port -> nodeIP:snatPort into nodeIP:nodePort -> client:port and sends it
 * out of the underlay (the neighbour is resolved by the kernel). Returns -1 when pkt is not such a
 * reply (the caller continues), otherwise the verdict.
 */
static __always_inline int nodeport_rev_nat(struct __sk_buff *skb, struct packet *pkt,
					    const struct dp_node_config *node)
{
	struct ct_key key = {};
	struct nodeport_nat *nat;
	union dp_addr node_addr = {};
	union dp_addr client;
	struct ipcache_value *remote;
	__be16 client_port, node_port;

	ct_key_fill(&key, &pkt->saddr, &pkt->daddr, pkt->sport, pkt->dport, pkt, CT_DIR_REPLY);
	nat = bpf_map_lookup_elem(&cm_nodeport, &key);
	if (!nat)
		return -1;
	nat->last_seen_ns = bpf_ktime_get_ns();
	client = nat->client;
	client_port = nat->client_port;
	node_port = nat->node_port;
	node_addr.ip4 = node->node_ip4;
	if (rewrite_addr_port(skb, pkt, 1, &node_addr, node_port)) {
		count_metric(METRIC_DROP_CSUM, skb->len);
		return TC_ACT_SHOT;
	}
	pkt->saddr = node_addr;
	pkt->sport = node_port;
	if (rewrite_addr_port(skb, pkt, 0, &client, client_port)) {
		count_metric(METRIC_DROP_CSUM, skb->len);
		return TC_ACT_SHOT;
	}
	pkt->daddr = client;
	pkt->dport = client_port;
	count_metric(METRIC_NODEPORT_REV_NAT, skb->len);
	/* a pod of a connected cluster (its node does not masquerade towards nodes the mesh knows):
	 * back through the tunnel to its node, with this node's identity (the reply is from its address) */
	remote = lookup_ipcache(&client, pkt->family);
	if (ipcache_has_ipv4_tunnel(remote) && (remote->flags & IPCACHE_F_REMOTE_CLUSTER))
		return redirect_to_tunnel(skb, remote, node->host_identity);
	if (!node->underlay_ifindex) {
		count_metric(METRIC_DROP_NO_CONFIG, skb->len);
		return TC_ACT_SHOT;
	}
	/* the source is now this node's own address: the stack would drop it as martian, so it is
	 * sent straight out of the underlay instead */
	count_metric(METRIC_FWD_NETDEV, skb->len);
	return bpf_redirect_neigh(node->underlay_ifindex, NULL, 0, 0);
}

#endif
