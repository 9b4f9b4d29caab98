// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * from-pod: tcx ingress of a pod's host-side veth, i.e. every packet the pod sends (IPv4 and IPv6).
 *  1. service lookup (VIP, port, proto) -> backend via conntrack (new flows pick a random slot)
 *     -> DNAT, and a reply entry so to-pod can reverse-NAT; a direct connection's SYN removes a
 *     stale reply entry on its tuple
 *  2. destination lookup: local endpoint -> redirect to its veth; ipcache entry with a tunnel
 *     endpoint -> tunnel key (remote = node IP, id = source identity) and redirect to the VXLAN
 *     device; anything else -> the kernel's routing.
 *  Between 1 and 2: the sending pod's egress policy on the destination's identity (dp_policy.h).
 * Before both: a backend pod's reply to a NodePort client outside the node (addressed to the node's
 * SNAT port) is translated back and sent out of the underlay (dp_nodeport.h).
 */
#include "dp_common.h"
#include "dp_lb.h"
#include "dp_lb_affinity.h"
#include "dp_nodeport.h"
#include "dp_masq.h"
#include "dp_flow.h"
#include "dp_policy.h"

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
	if (!frontend) {
		/* A direct connection opens (socket LB already chose the backend, or no service at all):
		 * the kernel picked this client port without regard to earlier per-packet-LB flows, so a
		 * reply entry left on this tuple by one of them is stale and would rewrite the replies of
		 * this connection into the VIP's. */
		if (is_tcp_open(pkt)) {
			ct_key_fill(&reply_key, &pkt->daddr, &pkt->saddr, pkt->dport, pkt->sport, pkt, CT_DIR_REPLY);
			bpf_map_delete_elem(&cm_conntrack, &reply_key);
		}
		return TC_ACT_OK;
	}
	if (frontend->count == 0) {
		count_metric(METRIC_DROP_NO_BACKEND, skb->len);
		return TC_ACT_SHOT;
	}

	now = bpf_ktime_get_ns();
	ct_key_fill(&svc_key, &pkt->saddr, &pkt->daddr, pkt->sport, pkt->dport, pkt, CT_DIR_SERVICE);
	ct = bpf_map_lookup_elem(&cm_conntrack, &svc_key);
	if (ct && ct->rev_nat_index == frontend->rev_nat_index) {
		/* keep the flow on its backend as long as that backend still is the one this flow was
		 * DNATed to: backend ids are reused, so the id alone could now name another service's
		 * backend; the reply entry (keyed by the backend's address) is the proof */
		backend = bpf_map_lookup_elem(&cm_backends, &ct->backend_id);
		if (backend) {
			struct ct_entry *reply;

			ct_key_fill(&reply_key, &backend->address, &pkt->saddr, backend->port, pkt->sport, pkt,
				    CT_DIR_REPLY);
			reply = bpf_map_lookup_elem(&cm_conntrack, &reply_key);
			if (reply && reply->backend_id == ct->backend_id &&
			    reply->rev_nat_index == frontend->rev_nat_index) {
				backend_id = ct->backend_id;
				ct->last_seen_ns = now;
				count_metric(METRIC_CT_HIT, skb->len);
			} else {
				backend = NULL;
			}
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

static __always_inline int from_pod(struct __sk_buff *skb)
{
	struct packet pkt = {};
	struct endpoint_info *src, *ep;
	struct ipcache_value *remote;
	struct dp_node_config *node;
	int verdict = parse_packet(skb, &pkt);

	if (verdict > 0)
		return TC_ACT_OK; /* not IP (ARP etc.): the stack's business */
	if (verdict < 0) {
		count_metric(METRIC_DROP_INVALID, skb->len);
		return TC_ACT_SHOT;
	}

	node = load_node_config();
	if (nodeport_maybe_reply(&pkt, node)) {
		verdict = nodeport_rev_nat(skb, &pkt, node);
		if (verdict >= 0)
			return verdict;
	}

	verdict = service_dnat(skb, &pkt);
	if (verdict != TC_ACT_OK)
		return verdict;

	src = lookup_endpoint(&pkt.saddr, pkt.family);
	__u32 src_identity = src ? src->identity : IDENTITY_WORLD;

	ep = lookup_endpoint(&pkt.daddr, pkt.family);
	remote = ep ? NULL : lookup_ipcache(&pkt.daddr, pkt.family);
	/* egress policy sees the destination after service translation, as Cilium's does */
	if (endpoint_has_policy(src)) {
		__u32 dst_identity = ep ? ep->identity : remote ? remote->identity : IDENTITY_WORLD;

		verdict = policy_enforce(skb, &pkt, src, POLICY_DIR_EGRESS, dst_identity);
		if (verdict != TC_ACT_OK)
			return verdict;
	}
	if (ep)
		return redirect_to_endpoint(skb, ep, src_identity);
	if (ipcache_has_ipv4_tunnel(remote))
		return redirect_to_tunnel(skb, remote, src_identity);

	/* leaving the pod network: SNAT to the node, so the other side can answer (dp_masq.h) */
	if (src_identity != IDENTITY_WORLD && masq_wanted(&pkt, node)) {
		verdict = masq_snat(skb, &pkt, node);
		if (verdict >= 0)
			return verdict;
	}

	count_metric(METRIC_FWD_STACK, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int cm_from_pod(struct __sk_buff *skb)
{
	flow_begin(skb, FLOW_HOOK_FROM_POD);
	return flow_end(skb, from_pod(skb), FLOW_HOOK_FROM_POD);
}
