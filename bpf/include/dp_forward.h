/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/* Forwarding decisions shared by the hooks that deliver packets: local endpoint, tunnel, conntrack keys. */
#ifndef DP_FORWARD_H
#define DP_FORWARD_H

#include "dp_common.h"
#include "dp_maps.h"

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

static __always_inline struct endpoint_info *lookup_endpoint(const union dp_addr *address, __u8 family)
{
	struct endpoint_key key = {};

	key.address = *address;
	key.family = family;
	return bpf_map_lookup_elem(&cm_endpoints, &key);
}

/* The most specific ipcache entry of an address, or NULL. */
static __always_inline struct ipcache_value *lookup_ipcache(const union dp_addr *address, __u8 family)
{
	struct ipcache_key key = {};

	key.prefixlen = IPCACHE_STATIC_PREFIX_BITS + (family == DP_FAMILY_IPV4 ? 32 : 128);
	key.family = family;
	key.address = *address;
	return bpf_map_lookup_elem(&cm_ipcache, &key);
}

/* IPv6 underlays are not supported yet: the tunnel endpoint (node IP) must be IPv4 */
static __always_inline int ipcache_has_ipv4_tunnel(const struct ipcache_value *remote)
{
	return remote && (remote->flags & IPCACHE_F_HAS_TUNNEL) && !(remote->flags & IPCACHE_F_TUNNEL_IPV6);
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

/* Sets the tunnel key (remote = the entry's node, id = the source identity); 0 on success. */
static __always_inline int set_tunnel_key(struct __sk_buff *skb, const struct dp_config *config,
					  const struct ipcache_value *remote, __u32 src_identity)
{
	struct bpf_tunnel_key tunnel = {};
	struct dp_trace *trace;

	tunnel.remote_ipv4 = bpf_ntohl(remote->tunnel_endpoint.ip4); /* the helper wants host order */
	tunnel.tunnel_id = src_identity;
	tunnel.tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, &tunnel, sizeof(tunnel), BPF_F_ZERO_CSUM_TX_)) {
		count_metric(METRIC_DROP_TUNNEL_KEY, skb->len);
		return -1;
	}
	trace = trace_slot(config);
	if (trace) {
		trace->tx_tunnel_id = tunnel.tunnel_id;
		trace->tx_remote_ip4 = remote->tunnel_endpoint.ip4;
		__sync_fetch_and_add(&trace->tx_count, 1);
	}
	return 0;
}

static __always_inline int redirect_to_tunnel(struct __sk_buff *skb, const struct ipcache_value *remote,
					      __u32 src_identity)
{
	struct dp_config *config = load_config();

	if (!config || !config->tunnel_ifindex) {
		count_metric(METRIC_DROP_NO_CONFIG, skb->len);
		return TC_ACT_SHOT;
	}
	if (set_tunnel_key(skb, config, remote, src_identity))
		return TC_ACT_SHOT;
	count_metric(METRIC_FWD_TUNNEL, skb->len);
	return bpf_redirect(config->tunnel_ifindex, 0);
}

#endif
