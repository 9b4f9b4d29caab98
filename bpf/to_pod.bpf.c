// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * to-pod: tcx egress of a pod's host-side veth, i.e. every packet about to enter the pod.
 * Reverse-NATs replies (IPv4 and IPv6) of per-packet-LB flows back to the service VIP, then asks the
 * policy hook (allow-all until network policy lands).
 */
#include "dp_common.h"
#include "dp_maps.h"
#include "dp_flow.h"

static __always_inline __u32 identity_from_mark(const struct __sk_buff *skb)
{
	if ((skb->mark & MARK_MAGIC_MASK) != MARK_MAGIC_IDENTITY)
		return IDENTITY_WORLD;
	return skb->mark >> MARK_IDENTITY_SHIFT;
}

/* Network policy goes here; it gets the source identity the sending hook recorded. */
static __always_inline int policy_allows(__u32 src_identity, const struct packet *pkt)
{
	(void)src_identity;
	(void)pkt;
	return 1;
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
	int verdict = parse_packet(skb, &pkt);

	if (verdict > 0)
		return TC_ACT_OK;
	if (verdict < 0) {
		count_metric(METRIC_DROP_INVALID, skb->len);
		return TC_ACT_SHOT;
	}
	if (reverse_nat(skb, &pkt)) {
		count_metric(METRIC_DROP_CSUM, skb->len);
		return TC_ACT_SHOT;
	}
	if (!policy_allows(identity_from_mark(skb), &pkt)) {
		count_metric(METRIC_DROP_POLICY, skb->len);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

SEC("tc")
int cm_to_pod(struct __sk_buff *skb)
{
	flow_begin(skb);
	return flow_end(skb, to_pod(skb), FLOW_HOOK_TO_POD);
}
