// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * The VXLAN collect-metadata ("external") device.
 * tunnel ingress (tcx ingress): the tunnel key's id is the sender's source identity; deliver to the
 * local endpoint with the identity in skb->mark (to-pod's policy hook reads it); for an endpoint that
 * enforces ingress, an identity of another cluster than the sending node's becomes world (dp_policy.h). A remote NodePort
 * backend's reply is reverse-translated and sent out of the underlay. Traffic for non-endpoints
 * goes to the stack.
 * tunnel egress (tcx egress): packets from-pod/from-netdev redirected here already carry a tunnel
 * key and pass. The node's own stack routes remote pod CIDRs to this device too (host, kubelet, a
 * host-network client); those get the key here: remote = the destination's ipcache tunnel
 * endpoint, id = the host identity (or the local endpoint's / world for forwarded traffic).
 * Without a tunnel endpoint the packet could only be dropped by the device: counted, dropped.
 */
#include "dp_common.h"
#include "dp_maps.h"
#include "dp_nodeport.h"
#include "dp_flow.h"
#include "dp_policy.h"

static __always_inline int tunnel_ingress(struct __sk_buff *skb)
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

	struct dp_node_config *node = load_node_config();

	if (nodeport_maybe_reply(&pkt, node)) {
		verdict = nodeport_rev_nat(skb, &pkt, node);
		if (verdict >= 0)
			return verdict;
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
	/* only an endpoint with a policy needs the claim checked (an ipcache lookup) */
	if (endpoint_has_policy(ep))
		src_identity = tunnel_source_identity(src_identity, bpf_htonl(tunnel.remote_ipv4), skb);
	skb->mark = (src_identity << MARK_IDENTITY_SHIFT) | MARK_MAGIC_IDENTITY;
	count_metric(METRIC_TUNNEL_RX, skb->len);
	return bpf_redirect(ep->ifindex, 0);
}

SEC("tc")
int cm_tunnel_ingress(struct __sk_buff *skb)
{
	flow_begin(skb, FLOW_HOOK_FROM_TUNNEL);
	return flow_end(skb, tunnel_ingress(skb), FLOW_HOOK_FROM_TUNNEL);
}

static __always_inline int tunnel_egress(struct __sk_buff *skb)
{
	struct bpf_tunnel_key existing = {};
	struct packet pkt = {};
	struct dp_node_config *node;
	struct endpoint_info *ep;
	struct ipcache_value *remote;
	__u32 src_identity = IDENTITY_WORLD;
	int verdict;

	/* from-pod / from-netdev chose the remote and the identity already */
	if (bpf_skb_get_tunnel_key(skb, &existing, sizeof(existing), 0) == 0)
		return TC_ACT_OK;
	verdict = parse_packet(skb, &pkt);
	if (verdict > 0)
		return TC_ACT_OK; /* not IP: the device drops what it cannot encapsulate */
	if (verdict < 0) {
		count_metric(METRIC_DROP_INVALID, skb->len);
		return TC_ACT_SHOT;
	}
	remote = lookup_ipcache(&pkt.daddr, pkt.family);
	if (!ipcache_has_ipv4_tunnel(remote)) {
		count_metric(METRIC_DROP_NO_TUNNEL_ENDPOINT, skb->len);
		return TC_ACT_SHOT;
	}
	node = load_node_config();
	if (node && pkt.family == DP_FAMILY_IPV4 && pkt.saddr.ip4 == node->node_ip4) {
		src_identity = node->host_identity;
	} else {
		ep = lookup_endpoint(&pkt.saddr, pkt.family);
		if (ep)
			src_identity = ep->identity;
	}
	if (set_tunnel_key(skb, load_config(), remote, src_identity))
		return TC_ACT_SHOT;
	count_metric(METRIC_TUNNEL_HOST_TX, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int cm_tunnel_egress(struct __sk_buff *skb)
{
	flow_begin(skb, FLOW_HOOK_TO_TUNNEL);
	return flow_end(skb, tunnel_egress(skb), FLOW_HOOK_TO_TUNNEL);
}
