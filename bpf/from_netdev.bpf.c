// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * from-netdev: tcx ingress of the node's underlay device (eth0): NodePort for clients that are not
 * pods of this node (other nodes' host networks, hosts outside the cluster).
 *   - not IPv4 to this node's IP, or no ports: untouched at once (one compare for transit traffic)
 *   - on a NodePort SNAT port: the reply of a flow to a remote backend that came back over the
 *     underlay -> reverse-translated and sent back out (dp_nodeport.h)
 *   - (nodeIP, port, proto) a NodePort frontend: backend chosen like from-pod (conntrack, then one
 *     random slot), DNAT to it and SNAT to nodeIP:snatPort (so the backend's reply returns here
 *     wherever it runs), then local endpoint -> redirect, ipcache tunnel entry -> VXLAN, anything
 *     else (a backend on the underlay) -> out of the underlay
 *   - anything else (SSH, the VXLAN port, the kubelet, ...): untouched, after one hash lookup
 *   - a NodePort a host process listens on itself: left to that socket (one socket lookup)
 * IPv6 NodePort from outside is not handled (the underlay is IPv4).
 */
#include "dp_common.h"
#include "dp_lb.h"
#include "dp_lb_affinity.h"
#include "dp_nodeport.h"
#include "dp_masq.h"
#include "dp_flow.h"

/* A free SNAT port for backend <- nodeIP, claimed atomically with the reply entry; 0 when none. */
static __always_inline __be16 nodeport_claim_snat_port(const struct packet *pkt, const struct lb_backend *backend,
						      const struct dp_node_config *node, __u32 backend_id)
{
	struct ct_key reply_key = {};
	struct nodeport_nat reply = {};
	union dp_addr node_addr = {};

	node_addr.ip4 = node->node_ip4;
	reply.client = pkt->saddr;
	reply.client_port = pkt->sport;
	reply.node_port = pkt->dport;
	reply.backend_id = backend_id;
	reply.last_seen_ns = bpf_ktime_get_ns();
	for (int attempt = 0; attempt < NODEPORT_SNAT_TRIES; attempt++) {
		__be16 port = bpf_htons(NODEPORT_SNAT_MIN +
					bpf_get_prandom_u32() % (NODEPORT_SNAT_MAX - NODEPORT_SNAT_MIN + 1));

		ct_key_fill(&reply_key, &backend->address, &node_addr, backend->port, port, pkt, CT_DIR_REPLY);
		if (bpf_map_update_elem(&cm_nodeport, &reply_key, &reply, BPF_NOEXIST) == 0)
			return port;
	}
	return 0;
}

/* Restores the reply entry of an established flow if the LRU evicted it (replies would be lost). */
static __always_inline void nodeport_keep_reply_entry(const struct packet *pkt, const struct lb_backend *backend,
						      const struct dp_node_config *node, __u32 backend_id,
						      __be16 snat_port)
{
	struct ct_key reply_key = {};
	struct nodeport_nat reply = {};
	union dp_addr node_addr = {};

	node_addr.ip4 = node->node_ip4;
	ct_key_fill(&reply_key, &backend->address, &node_addr, backend->port, snat_port, pkt, CT_DIR_REPLY);
	if (bpf_map_lookup_elem(&cm_nodeport, &reply_key))
		return;
	reply.client = pkt->saddr;
	reply.client_port = pkt->sport;
	reply.node_port = pkt->dport;
	reply.backend_id = backend_id;
	reply.last_seen_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&cm_nodeport, &reply_key, &reply, BPF_ANY);
}

#define BPF_F_CURRENT_NETNS_ (-1L)

/*
 * Whether a socket of the node itself takes this packet: a process listening on the NodePort on
 * the host network (the lab "exposes" the clustermesh-apiserver's etcd that way). Such a port is
 * the host's, as before from-netdev existed; asked only for packets that match a frontend.
 */
static __always_inline int host_socket_owns(struct __sk_buff *skb, const struct packet *pkt)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;

	tuple.ipv4.saddr = pkt->saddr.ip4;
	tuple.ipv4.daddr = pkt->daddr.ip4;
	tuple.ipv4.sport = pkt->sport;
	tuple.ipv4.dport = pkt->dport;
	if (pkt->proto == IPPROTO_TCP_)
		sk = (struct bpf_sock *)bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS_, 0);
	else
		sk = bpf_sk_lookup_udp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS_, 0);
	if (!sk)
		return 0;
	bpf_sk_release(sk);
	return 1;
}

/* Sends pkt out of the device the routing table has for its destination (a drop route drops it:
 * what encryption must cover is never sent another way). */
static __always_inline int redirect_by_route(struct __sk_buff *skb, const struct packet *pkt)
{
	struct bpf_fib_lookup fib = {
		.family = 2, /* AF_INET: vmlinux.h carries no socket constants */
		.ipv4_src = pkt->saddr.ip4,
		.ipv4_dst = pkt->daddr.ip4,
		.ifindex = skb->ifindex,
	};
	int rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);

	/* L3 devices (WireGuard, ipsec0's TUN) have no neighbours: NO_NEIGH still names the device */
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
		count_metric(METRIC_DROP_NO_ROUTE, skb->len);
		return TC_ACT_SHOT;
	}
	count_metric(METRIC_FWD_NETDEV, skb->len);
	return bpf_redirect_neigh(fib.ifindex, NULL, 0, 0);
}

static __always_inline int nodeport_forward(struct __sk_buff *skb, struct packet *pkt,
					    const struct dp_node_config *node)
{
	struct lb_service_value *frontend;
	struct lb_backend *backend = NULL;
	struct ct_key flow_key = {};
	struct nodeport_nat *flow;
	struct nodeport_nat entry = {};
	struct endpoint_info *ep;
	struct ipcache_value *remote;
	union dp_addr node_addr = {};
	__u32 backend_id = 0;
	__be16 snat_port = 0;
	__u64 now;

	frontend = lb_lookup_frontend(&pkt->daddr, pkt->family, pkt->dport, pkt->proto);
	if (!frontend)
		return TC_ACT_OK; /* not a NodePort: the node's own business */
	if (host_socket_owns(skb, pkt)) {
		count_metric(METRIC_FWD_STACK, skb->len);
		return TC_ACT_OK;
	}
	if (frontend->count == 0) {
		count_metric(METRIC_DROP_NO_BACKEND, skb->len);
		return TC_ACT_SHOT;
	}

	now = bpf_ktime_get_ns();
	ct_key_fill(&flow_key, &pkt->saddr, &pkt->daddr, pkt->sport, pkt->dport, pkt, CT_DIR_SERVICE);
	flow = bpf_map_lookup_elem(&cm_nodeport, &flow_key);
	if (flow) {
		/* the flow stays on its backend (and SNAT port) as long as that backend exists */
		backend = bpf_map_lookup_elem(&cm_backends, &flow->backend_id);
		if (backend) {
			backend_id = flow->backend_id;
			snat_port = flow->snat_port;
			flow->last_seen_ns = now;
			count_metric(METRIC_CT_HIT, skb->len);
			nodeport_keep_reply_entry(pkt, backend, node, backend_id, snat_port);
		}
	}
	if (!backend) {
		struct lb_affinity_key akey = {};

		lb_affinity_key_by_addr(&akey, &pkt->saddr);
		backend_id = lb_select_backend_id(frontend, &akey, &pkt->daddr, pkt->family, pkt->dport, pkt->proto);
		backend = backend_id ? bpf_map_lookup_elem(&cm_backends, &backend_id) : NULL;
		if (!backend || backend->family != pkt->family) {
			count_metric(METRIC_DROP_BACKEND_SLOT, skb->len);
			return TC_ACT_SHOT;
		}
		snat_port = nodeport_claim_snat_port(pkt, backend, node, backend_id);
		if (!snat_port) {
			count_metric(METRIC_DROP_SNAT_PORTS, skb->len);
			return TC_ACT_SHOT;
		}
		entry.backend_id = backend_id;
		entry.snat_port = snat_port;
		entry.last_seen_ns = now;
		bpf_map_update_elem(&cm_nodeport, &flow_key, &entry, BPF_ANY);
		count_metric(METRIC_CT_NEW, skb->len);
	}

	union dp_addr backend_addr = backend->address;
	__be16 backend_port = backend->port;

	if (rewrite_addr_port(skb, pkt, 0, &backend_addr, backend_port)) {
		count_metric(METRIC_DROP_CSUM, skb->len);
		return TC_ACT_SHOT;
	}
	pkt->daddr = backend_addr;
	pkt->dport = backend_port;
	node_addr.ip4 = node->node_ip4;
	if (rewrite_addr_port(skb, pkt, 1, &node_addr, snat_port)) {
		count_metric(METRIC_DROP_CSUM, skb->len);
		return TC_ACT_SHOT;
	}
	pkt->saddr = node_addr;
	pkt->sport = snat_port;
	count_metric(METRIC_NODEPORT_DNAT, skb->len);

	/* the client is outside the cluster's identities: world, like Cilium */
	ep = lookup_endpoint(&pkt->daddr, pkt->family);
	if (ep)
		return redirect_to_endpoint(skb, ep, IDENTITY_WORLD);
	remote = lookup_ipcache(&pkt->daddr, pkt->family);
	if (ipcache_has_ipv4_tunnel(remote))
		return redirect_to_tunnel(skb, remote, IDENTITY_WORLD);
	/* No tunnel: a backend on the underlay (host network of another node), or a pod of another
	 * node while encryption routes pod prefixes to its device (WireGuard, ipsec0) instead of the
	 * tunnel. The source is now our own address, which the stack would drop as martian, so the
	 * routing table picks the device and the packet leaves through it directly. */
	return redirect_by_route(skb, pkt);
}

static __always_inline int from_netdev(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct dp_node_config *node;
	struct packet pkt = {};
	int verdict;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	node = load_node_config();
	if (!node || ip->daddr != node->node_ip4)
		return TC_ACT_OK; /* transit or not configured yet */
	/* malformed packets to the node are the stack's to drop */
	if (parse_packet(skb, &pkt) != 0 || !pkt.has_ports)
		return TC_ACT_OK;
	if (nodeport_is_snat_port(pkt.dport)) {
		verdict = nodeport_rev_nat(skb, &pkt, node);
		if (verdict >= 0)
			return verdict;
		verdict = masq_rev_nat(skb, &pkt);
		if (verdict >= 0)
			return verdict;
		return TC_ACT_OK;
	}
	return nodeport_forward(skb, &pkt, node);
}

SEC("tc")
int cm_from_netdev(struct __sk_buff *skb)
{
	flow_begin(skb, FLOW_HOOK_FROM_NETDEV);
	return flow_end(skb, from_netdev(skb), FLOW_HOOK_FROM_NETDEV);
}
