// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * from-pod: tcx ingress of a pod's host-side veth, i.e. every packet the pod sends.
 *  1. service lookup (VIP, port, proto) -> backend via conntrack (new flows pick a random slot)
 *     -> DNAT, and a reply entry so to-pod can reverse-NAT
 *  2. destination lookup: local endpoint -> redirect to its veth; ipcache entry with a tunnel
 *     endpoint -> tunnel key (remote = node IP, id = source identity) and redirect to the VXLAN
 *     device; anything else -> the kernel's routing.
 */
#include "dp_common.h"
#include "dp_lb.h"

static __always_inline void ct_key_fill(struct ct_key *key, __be32 saddr, __be32 daddr, __be16 sport, __be16 dport,
					__u8 proto, __u8 direction)
{
	key->saddr.ip4 = saddr;
	key->daddr.ip4 = daddr;
	key->sport = sport;
	key->dport = dport;
	key->proto = proto;
	key->family = DP_FAMILY_IPV4;
	key->direction = direction;
}

/* Returns TC_ACT_OK to continue with routing, or a verdict to return at once. */
static __always_inline int service_dnat(struct __sk_buff *skb, struct packet4 *pkt)
{
	struct lb_service_value *frontend;
	struct lb_backend *backend = NULL;
	struct ct_key svc_key = {};
	struct ct_key reply_key = {};
	struct ct_entry *ct;
	struct ct_entry entry = {};
	__u32 backend_id = 0;
	__u64 now;

	if (!pkt->has_ports)
		return TC_ACT_OK;
	frontend = lb4_lookup_frontend(pkt->daddr, pkt->dport, pkt->proto);
	if (!frontend)
		return TC_ACT_OK;
	if (frontend->count == 0) {
		count_metric(METRIC_DROP_NO_BACKEND, skb->len);
		return TC_ACT_SHOT;
	}

	now = bpf_ktime_get_ns();
	ct_key_fill(&svc_key, pkt->saddr, pkt->daddr, pkt->sport, pkt->dport, pkt->proto, CT_DIR_SERVICE);
	ct = bpf_map_lookup_elem(&cm_conntrack, &svc_key);
	if (ct) {
		/* keep the flow on its backend as long as that backend exists */
		backend = bpf_map_lookup_elem(&cm_backends, &ct->backend_id);
		if (backend) {
			backend_id = ct->backend_id;
			ct->last_seen_ns = now;
			count_metric(METRIC_CT_HIT, skb->len);
		}
	}
	if (!backend) {
		backend_id = lb4_pick_backend_id(pkt->daddr, pkt->dport, pkt->proto, frontend->count);
		backend = backend_id ? bpf_map_lookup_elem(&cm_backends, &backend_id) : NULL;
		if (!backend) {
			count_metric(METRIC_DROP_BACKEND_SLOT, skb->len);
			return TC_ACT_SHOT;
		}
		entry.backend_id = backend_id;
		entry.rev_nat_index = frontend->rev_nat_index;
		entry.last_seen_ns = now;
		bpf_map_update_elem(&cm_conntrack, &svc_key, &entry, BPF_ANY);
		count_metric(METRIC_CT_NEW, skb->len);
	}

	/* reply tuple as the backend will send it; refreshed in place when it exists (an LRU update
	 * on every packet would cost more than the rest of the fast path) */
	ct_key_fill(&reply_key, backend->address.ip4, pkt->saddr, backend->port, pkt->sport, pkt->proto,
		    CT_DIR_REPLY);
	ct = bpf_map_lookup_elem(&cm_conntrack, &reply_key);
	if (ct && ct->rev_nat_index == frontend->rev_nat_index) {
		ct->last_seen_ns = now;
	} else {
		entry.backend_id = backend_id;
		entry.rev_nat_index = frontend->rev_nat_index;
		entry.last_seen_ns = now;
		bpf_map_update_elem(&cm_conntrack, &reply_key, &entry, BPF_ANY);
	}

	__be32 new_addr = backend->address.ip4;
	__be16 new_port = backend->port;

	if (rewrite_addr_port(skb, pkt, 0, new_addr, new_port)) {
		count_metric(METRIC_DROP_CSUM, skb->len);
		return TC_ACT_SHOT;
	}
	pkt->daddr = new_addr;
	pkt->dport = new_port;
	count_metric(METRIC_LB_DNAT, skb->len);
	return TC_ACT_OK;
}

static __always_inline __u32 source_identity(__be32 saddr)
{
	struct endpoint_key key = {};
	struct endpoint_info *ep;

	key.address.ip4 = saddr;
	key.family = DP_FAMILY_IPV4;
	ep = bpf_map_lookup_elem(&cm_endpoints, &key);
	return ep ? ep->identity : IDENTITY_WORLD;
}

static __always_inline int redirect_to_endpoint(struct __sk_buff *skb, const struct endpoint_info *ep,
						__u32 src_identity)
{
	if (bpf_skb_store_bytes(skb, 0, ep->mac, ETH_ALEN, 0) ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, ep->node_mac, ETH_ALEN, 0)) {
		count_metric(METRIC_DROP_CSUM, skb->len);
		return TC_ACT_SHOT;
	}
	skb->mark = (src_identity << MARK_IDENTITY_SHIFT) | MARK_MAGIC_IDENTITY;
	count_metric(METRIC_FWD_LOCAL, skb->len);
	return bpf_redirect(ep->ifindex, 0);
}

static __always_inline int redirect_to_tunnel(struct __sk_buff *skb, const struct ipcache_value *remote,
					      __u32 src_identity)
{
	struct dp_config *config = load_config();
	struct bpf_tunnel_key tunnel = {};
	struct dp_trace *trace;

	if (!config || !config->tunnel_ifindex) {
		count_metric(METRIC_DROP_NO_CONFIG, skb->len);
		return TC_ACT_SHOT;
	}
	tunnel.remote_ipv4 = bpf_ntohl(remote->tunnel_endpoint.ip4); /* the helper wants host order */
	tunnel.tunnel_id = src_identity;
	tunnel.tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, &tunnel, sizeof(tunnel), BPF_F_ZERO_CSUM_TX_)) {
		count_metric(METRIC_DROP_TUNNEL_KEY, skb->len);
		return TC_ACT_SHOT;
	}
	trace = trace_slot(config);
	if (trace) {
		trace->tx_tunnel_id = tunnel.tunnel_id;
		trace->tx_remote_ip4 = remote->tunnel_endpoint.ip4;
		__sync_fetch_and_add(&trace->tx_count, 1);
	}
	count_metric(METRIC_FWD_TUNNEL, skb->len);
	return bpf_redirect(config->tunnel_ifindex, 0);
}

SEC("tc")
int cm_from_pod(struct __sk_buff *skb)
{
	struct packet4 pkt = {};
	struct endpoint_key ep_key = {};
	struct endpoint_info *ep;
	struct ipcache_key ipc_key = {};
	struct ipcache_value *remote;
	int verdict = parse_ipv4(skb, &pkt);

	if (verdict > 0)
		return TC_ACT_OK; /* not IPv4: IPv6 is not implemented yet, ARP etc. go to the stack */
	if (verdict < 0) {
		count_metric(METRIC_DROP_INVALID, skb->len);
		return TC_ACT_SHOT;
	}

	verdict = service_dnat(skb, &pkt);
	if (verdict != TC_ACT_OK)
		return verdict;

	__u32 src_identity = source_identity(pkt.saddr);

	ep_key.address.ip4 = pkt.daddr;
	ep_key.family = DP_FAMILY_IPV4;
	ep = bpf_map_lookup_elem(&cm_endpoints, &ep_key);
	if (ep)
		return redirect_to_endpoint(skb, ep, src_identity);

	ipc_key.prefixlen = IPCACHE_STATIC_PREFIX_BITS + 32;
	ipc_key.family = DP_FAMILY_IPV4;
	ipc_key.address.ip4 = pkt.daddr;
	remote = bpf_map_lookup_elem(&cm_ipcache, &ipc_key);
	if (remote && (remote->flags & IPCACHE_F_HAS_TUNNEL) && !(remote->flags & IPCACHE_F_TUNNEL_IPV6))
		return redirect_to_tunnel(skb, remote, src_identity);

	count_metric(METRIC_FWD_STACK, skb->len);
	return TC_ACT_OK;
}
