// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * from-pod: tcx ingress of a pod's host-side veth, i.e. every packet the pod sends (IPv4 and IPv6).
 *  1. service lookup (VIP, port, proto) -> backend via conntrack (new flows pick a random slot)
 *     -> DNAT, and a reply entry so to-pod can reverse-NAT
 *  2. destination lookup: local endpoint -> redirect to its veth; ipcache entry with a tunnel
 *     endpoint -> tunnel key (remote = node IP, id = source identity) and redirect to the VXLAN
 *     device; anything else -> the kernel's routing.
 */
#include "dp_common.h"
#include "dp_lb.h"

static __always_inline void ct_key_fill(struct ct_key *key, const union dp_addr *saddr, const union dp_addr *daddr,
					__be16 sport, __be16 dport, const struct packet *pkt, __u8 direction)
{
	key->saddr = *saddr;
	key->daddr = *daddr;
	key->sport = sport;
	key->dport = dport;
	key->proto = pkt->proto;
	key->family = pkt->family;
	key->direction = direction;
}

/* Returns TC_ACT_OK to continue with routing, or a verdict to return at once. */
static __always_inline int service_dnat(struct __sk_buff *skb, struct packet *pkt)
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
	frontend = lb_lookup_frontend(&pkt->daddr, pkt->family, pkt->dport, pkt->proto);
	if (!frontend)
		return TC_ACT_OK;
	if (frontend->count == 0) {
		count_metric(METRIC_DROP_NO_BACKEND, skb->len);
		return TC_ACT_SHOT;
	}

	now = bpf_ktime_get_ns();
	ct_key_fill(&svc_key, &pkt->saddr, &pkt->daddr, pkt->sport, pkt->dport, pkt, CT_DIR_SERVICE);
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
		backend_id = lb_pick_backend_id(&pkt->daddr, pkt->family, pkt->dport, pkt->proto, frontend->count);
		backend = backend_id ? bpf_map_lookup_elem(&cm_backends, &backend_id) : NULL;
		if (!backend || backend->family != pkt->family) {
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
	ct_key_fill(&reply_key, &backend->address, &pkt->saddr, backend->port, pkt->sport, pkt, CT_DIR_REPLY);
	ct = bpf_map_lookup_elem(&cm_conntrack, &reply_key);
	if (ct && ct->rev_nat_index == frontend->rev_nat_index) {
		ct->last_seen_ns = now;
	} else {
		entry.backend_id = backend_id;
		entry.rev_nat_index = frontend->rev_nat_index;
		entry.last_seen_ns = now;
		bpf_map_update_elem(&cm_conntrack, &reply_key, &entry, BPF_ANY);
	}

	union dp_addr new_addr = backend->address;
	__be16 new_port = backend->port;

	if (rewrite_addr_port(skb, pkt, 0, &new_addr, new_port)) {
		count_metric(METRIC_DROP_CSUM, skb->len);
		return TC_ACT_SHOT;
	}
	pkt->daddr = new_addr;
	pkt->dport = new_port;
	count_metric(METRIC_LB_DNAT, skb->len);
	return TC_ACT_OK;
}

static __always_inline struct endpoint_info *lookup_endpoint(const union dp_addr *address, __u8 family)
{
	struct endpoint_key key = {};

	key.address = *address;
	key.family = family;
	return bpf_map_lookup_elem(&cm_endpoints, &key);
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
	struct packet pkt = {};
	struct endpoint_info *ep;
	struct ipcache_key ipc_key = {};
	struct ipcache_value *remote;
	int verdict = parse_packet(skb, &pkt);

	if (verdict > 0)
		return TC_ACT_OK; /* not IP (ARP etc.): the stack's business */
	if (verdict < 0) {
		count_metric(METRIC_DROP_INVALID, skb->len);
		return TC_ACT_SHOT;
	}

	verdict = service_dnat(skb, &pkt);
	if (verdict != TC_ACT_OK)
		return verdict;

	ep = lookup_endpoint(&pkt.saddr, pkt.family);
	__u32 src_identity = ep ? ep->identity : IDENTITY_WORLD;

	ep = lookup_endpoint(&pkt.daddr, pkt.family);
	if (ep)
		return redirect_to_endpoint(skb, ep, src_identity);

	ipc_key.prefixlen = IPCACHE_STATIC_PREFIX_BITS + (pkt.family == DP_FAMILY_IPV4 ? 32 : 128);
	ipc_key.family = pkt.family;
	ipc_key.address = pkt.daddr;
	remote = bpf_map_lookup_elem(&cm_ipcache, &ipc_key);
	/* IPv6 underlays are not supported yet: the tunnel endpoint (node IP) must be IPv4 */
	if (remote && (remote->flags & IPCACHE_F_HAS_TUNNEL) && !(remote->flags & IPCACHE_F_TUNNEL_IPV6))
		return redirect_to_tunnel(skb, remote, src_identity);

	count_metric(METRIC_FWD_STACK, skb->len);
	return TC_ACT_OK;
}
