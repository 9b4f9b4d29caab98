// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * to-pod: tcx egress of a pod's host-side veth, i.e. every packet about to enter the pod.
 * Enforces the pod's ingress policy on the source identity (dp_policy.h), then reverse-NATs replies
 * (IPv4 and IPv6) of per-packet-LB flows back to the service VIP.
 */
#include "dp_common.h"
#include "dp_maps.h"
#include "dp_flow.h"
#include "dp_policy.h"

/* The source identity the delivering hook recorded (from-pod, tunnel ingress); without one the
 * packet came through the node's stack: the node itself, else whatever the ipcache says. */
static __always_inline __u32 source_identity(const struct __sk_buff *skb, const struct packet *pkt)
{
	struct dp_node_config *node;
	struct ipcache_value *entry;

	if ((skb->mark & MARK_MAGIC_MASK) == MARK_MAGIC_IDENTITY)
		return skb->mark >> MARK_IDENTITY_SHIFT;
	node = load_node_config();
	if (node && pkt->family == DP_FAMILY_IPV4 && pkt->saddr.ip4 == node->node_ip4)
		return IDENTITY_HOST;
	entry = lookup_ipcache(&pkt->saddr, pkt->family);
	return entry ? entry->identity : IDENTITY_WORLD;
}

static __always_inline int reverse_nat(struct __sk_buff *skb, struct packet *pkt)
{
	struct ct_key key = {};
	struct ct_entry *ct;
	struct lb_rev_nat *frontend;

	if (!pkt->has_ports)
		return 0;
	key.saddr = pkt->saddr;
	key.daddr = pkt->daddr;
	key.sport = pkt->sport;
	key.dport = pkt->dport;
	key.proto = pkt->proto;
	key.family = pkt->family;
	key.direction = CT_DIR_REPLY;
	ct = bpf_map_lookup_elem(&cm_conntrack, &key);
	if (!ct)
		return 0;
	__u64 now = bpf_ktime_get_ns();

	/* without connection state, a UDP flow silent this long is over (Cilium's non-TCP lifetime):
	 * its entry must not rewrite a later direct flow that happens to reuse the tuple */
	if (pkt->proto != IPPROTO_TCP_ && now - ct->last_seen_ns > CT_LIFETIME_NONTCP_NS) {
		bpf_map_delete_elem(&cm_conntrack, &key);
		return 0;
	}
	__u16 index = ct->rev_nat_index;

	frontend = bpf_map_lookup_elem(&cm_rev_nat, &index);
	if (!frontend || frontend->family != pkt->family)
		return 0;
	ct->last_seen_ns = now;
	if (rewrite_addr_port(skb, pkt, 1, &frontend->address, frontend->port))
		return -1;
	count_metric(METRIC_LB_REV_NAT, skb->len);
	return 0;
}

static __always_inline int to_pod(struct __sk_buff *skb)
{
	struct packet pkt = {};
	struct endpoint_info *ep;
	int verdict = parse_packet(skb, &pkt);

	if (verdict > 0)
		return TC_ACT_OK;
	if (verdict < 0) {
		count_metric(METRIC_DROP_INVALID, skb->len);
		return TC_ACT_SHOT;
	}
	/* ingress policy before reverse NAT: a service reply is judged by the backend that sent it,
	 * which is the address its connection entry was recorded with */
	ep = lookup_endpoint(&pkt.daddr, pkt.family);
	if (endpoint_has_policy(ep)) {
		verdict = policy_enforce(skb, &pkt, ep, POLICY_DIR_INGRESS, source_identity(skb, &pkt));
		if (verdict != TC_ACT_OK)
			return verdict;
	}
	if (reverse_nat(skb, &pkt)) {
		count_metric(METRIC_DROP_CSUM, skb->len);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

SEC("tc")
int cm_to_pod(struct __sk_buff *skb)
{
	flow_begin(skb, FLOW_HOOK_TO_POD);
	return flow_end(skb, to_pod(skb), FLOW_HOOK_TO_POD);
}
