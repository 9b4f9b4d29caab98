// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * tunnel ingress: tcx ingress of the VXLAN collect-metadata ("external") device. The tunnel
 * key's id is the sender's source identity; deliver to the local endpoint with the identity in
 * skb->mark (to-pod's policy hook reads it). Traffic for non-endpoints goes to the stack.
 */
#include "dp_common.h"
#include "dp_maps.h"

SEC("tc")
int cm_tunnel_ingress(struct __sk_buff *skb)
{
	struct bpf_tunnel_key tunnel = {};
	struct packet pkt = {};
	struct endpoint_key ep_key = {};
	struct endpoint_info *ep;
	struct dp_trace *trace;
	int verdict = parse_packet(skb, &pkt);

	if (verdict > 0)
		return TC_ACT_OK;
	if (verdict < 0) {
		count_metric(METRIC_DROP_INVALID, skb->len);
		return TC_ACT_SHOT;
	}
	if (bpf_skb_get_tunnel_key(skb, &tunnel, sizeof(tunnel), 0)) {
		count_metric(METRIC_DROP_TUNNEL_KEY, skb->len);
		return TC_ACT_SHOT;
	}
	__u32 src_identity = tunnel.tunnel_id;

	trace = trace_slot(load_config());
	if (trace) {
		trace->rx_identity = src_identity;
		trace->rx_remote_ip4 = bpf_htonl(tunnel.remote_ipv4);
		__sync_fetch_and_add(&trace->rx_count, 1);
	}

	ep_key.address = pkt.daddr;
	ep_key.family = pkt.family;
	ep = bpf_map_lookup_elem(&cm_endpoints, &ep_key);
	if (!ep) {
		count_metric(METRIC_FWD_STACK, skb->len);
		return TC_ACT_OK;
	}
	if (bpf_skb_store_bytes(skb, 0, ep->mac, ETH_ALEN, 0) ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, ep->node_mac, ETH_ALEN, 0)) {
		count_metric(METRIC_DROP_CSUM, skb->len);
		return TC_ACT_SHOT;
	}
	skb->mark = (src_identity << MARK_IDENTITY_SHIFT) | MARK_MAGIC_IDENTITY;
	count_metric(METRIC_TUNNEL_RX, skb->len);
	return bpf_redirect(ep->ifindex, 0);
}
