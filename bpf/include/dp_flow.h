/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Flow events (Hubble's "flows"): one fixed-size event per packet a hook acted on, written to the
 * BPF ring buffer cm_flows when DP_CONFIG_FLOWS is set in cm_config. The agent reads the ring
 * (agent/flows/); a full ring never drops the packet: the event is counted in cm_flow_lost instead.
 *
 * Each tc program is split into its body and a three-line wrapper:
 *   flow_begin(skb); return flow_end(skb, body(skb), FLOW_HOOK_x);
 * flow_begin clears the per-CPU note (dp_flow_note.h) and, with flows on, keeps the destination
 * before translation; flow_end reads the note (drop reason, DNAT, tunnel) and the packet as it
 * leaves, and emits. Off, the cost is two per-CPU array lookups and a flag test per packet.
 * Cost on (bench/flows.ts): the ring write is most of it, so the event carries only what the
 * datapath knows for free; identities it did not read from the packet (tunnel key, mark) are 0 and
 * the agent resolves them from the addresses with the same tables it programmed the maps from.
 * Like Cilium's default monitor aggregation ("medium"), a forwarded packet is reported only when
 * its connection shows a new TCP flag or was last reported 5 s ago (dp_flow_agg.h), unless
 * DP_CONFIG_FLOWS_ALL; drops are always reported.
 * Cilium's equivalent: bpf/lib/trace.h, bpf/lib/drop.h (https://github.com/cilium/cilium/tree/main/bpf/lib).
 */
#ifndef DP_FLOW_H
#define DP_FLOW_H

#include "dp_flow_agg.h"
#include "dp_forward.h"

#define DP_CONFIG_FLOWS 2     /* cm_config.flags: emit flow events */
#define DP_CONFIG_FLOWS_ALL 4 /* ... for every packet: no aggregation (dp_flow_agg.h) */

enum flow_type {
	FLOW_TYPE_TRACE = 1,          /* forwarded (possibly translated or tunnelled) */
	FLOW_TYPE_DROP = 2,           /* dropped; reason = enum dp_metric */
	FLOW_TYPE_POLICY_VERDICT = 3, /* reserved for network policy (issue 16) */
};

enum flow_verdict {
	FLOW_VERDICT_FORWARDED = 1,
	FLOW_VERDICT_DROPPED = 2,
	/* 3.. reserved for policy verdicts (audit, ...) */
};

enum flow_hook {
	FLOW_HOOK_FROM_POD = 1,    /* tcx ingress of a pod's host veth */
	FLOW_HOOK_TO_POD = 2,      /* tcx egress of a pod's host veth */
	FLOW_HOOK_FROM_TUNNEL = 3, /* tcx ingress of the VXLAN device */
	FLOW_HOOK_TO_TUNNEL = 4,   /* tcx egress of the VXLAN device (the node's own traffic) */
	FLOW_HOOK_FROM_NETDEV = 5, /* tcx ingress of the underlay device */
};

/* Layout mirrored by bpf/flows/event.ts (FLOW_EVENT_LAYOUT). The struct is only reached through a
 * ring pointer, so clang emits no BTF for it to check against: the offsets are asserted below. */
struct flow_event {
	__u64 ts_ns;               /* bpf_ktime_get_coarse_ns(): CLOCK_MONOTONIC, tick resolution */
	union dp_addr saddr;       /* as the packet leaves the hook */
	union dp_addr daddr;
	union dp_addr orig_daddr;  /* destination before translation (service VIP), when translated */
	__u32 src_identity;        /* from the tunnel key or skb mark; 0: the reader resolves it */
	__u32 dst_identity;        /* 0: the reader resolves it */
	__u32 ifindex;
	__be32 tunnel_ip4;         /* sending node of a packet from the tunnel (to-tunnel: 0, see ipcache) */
	__u32 len;
	__u32 metrics;             /* bitmask of the enum dp_metric reasons counted by this hook run */
	__be16 sport;
	__be16 dport;
	__be16 orig_dport;
	__u8 type;                 /* enum flow_type */
	__u8 hook;                 /* enum flow_hook */
	__u8 reason;               /* last enum dp_metric: the drop reason, or how it was forwarded */
	__u8 verdict;              /* enum flow_verdict */
	__u8 proto;
	__u8 family;
	__u8 tcp_flags;
	__u8 flags;                /* reserved */
	__u16 policy;              /* reserved for policy verdict details (issue 16) */
};

_Static_assert(sizeof(struct flow_event) == 96, "flow_event size (bpf/flows/event.ts)");
_Static_assert(__builtin_offsetof(struct flow_event, orig_daddr) == 40, "flow_event.orig_daddr");
_Static_assert(__builtin_offsetof(struct flow_event, ifindex) == 64, "flow_event.ifindex");
_Static_assert(__builtin_offsetof(struct flow_event, metrics) == 76, "flow_event.metrics");
_Static_assert(__builtin_offsetof(struct flow_event, type) == 86, "flow_event.type");
_Static_assert(__builtin_offsetof(struct flow_event, policy) == 94, "flow_event.policy");

#define FLOW_RING_BYTES (1 << 22) /* 4 MiB: ~40k events */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FLOW_RING_BYTES);
	DP_PIN;
} cm_flows SEC(".maps");

/* events the ring had no room for (the reader fell behind), per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	DP_PIN;
} cm_flow_lost SEC(".maps");

#define BPF_RB_NO_WAKEUP_ 1 /* the agent polls on a timer: no wakeup per event */

/* note->enabled after flow_begin */
enum flow_report {
	FLOW_REPORT_OFF = 0,
	FLOW_REPORT_AGGREGATED = 1, /* a drop, or what the aggregation table lets through */
	FLOW_REPORT_ALL = 2,
};

static __always_inline void flow_begin(struct __sk_buff *skb, __u8 hook)
{
	struct flow_note *note = flow_note_slot();
	struct dp_config *config = load_config();
	struct packet pkt = {};

	if (!note)
		return;
	note->metrics = 0;
	note->last = 0;
	note->enabled = FLOW_REPORT_OFF;
	note->agg_key = 0;
	if (!config || !(config->flags & DP_CONFIG_FLOWS))
		return;
	note->enabled = FLOW_REPORT_AGGREGATED;
	/* not IP: never an event */
	if (parse_packet(skb, &pkt) != 0)
		return;
	note->orig_daddr = pkt.daddr;
	note->orig_dport = pkt.dport;
	if (config->flags & DP_CONFIG_FLOWS_ALL)
		note->enabled = FLOW_REPORT_ALL;
	else if (pkt.proto != IPPROTO_TCP_ || (pkt.tcp_flags & TCP_FLAGS_REPORTED))
		note->agg_key = flow_agg_key(&pkt, hook); /* else 0: an established TCP segment */
}

static __always_inline int flow_end(struct __sk_buff *skb, int verdict, __u8 hook)
{
	struct flow_note *note = flow_note_slot();
	struct bpf_tunnel_key tunnel = {};
	struct flow_event *event;
	struct packet pkt = {};
	__u32 zero = 0;
	__u64 *lost;

	if (!note || !note->enabled)
		return verdict;
	/* a hook that did nothing to the packet (ARP, transit, already keyed) is not a flow event;
	 * to-pod counts nothing for a plain delivery, but that delivery is the flow's last step */
	if (verdict != TC_ACT_SHOT && !note->metrics && hook != FLOW_HOOK_TO_POD)
		return verdict;
	/* aggregated (before parsing the packet again) */
	if (verdict != TC_ACT_SHOT && note->enabled != FLOW_REPORT_ALL &&
	    (!note->agg_key || !flow_agg_report(note->agg_key)))
		return verdict;
	if (parse_packet(skb, &pkt) > 0)
		return verdict; /* not IP */
	event = bpf_ringbuf_reserve(&cm_flows, sizeof(*event), 0);
	if (!event) {
		lost = bpf_map_lookup_elem(&cm_flow_lost, &zero);
		if (lost)
			*lost += 1;
		return verdict;
	}
	/* the coarse clock (tick resolution): the precise one costs ~40 ns here, a third of the event */
	event->ts_ns = bpf_ktime_get_coarse_ns();
	event->saddr = pkt.saddr;
	event->daddr = pkt.daddr;
	event->orig_daddr = note->orig_daddr;
	event->orig_dport = note->orig_dport;
	event->sport = pkt.sport;
	event->dport = pkt.dport;
	event->proto = pkt.proto;
	event->family = pkt.family;
	event->tcp_flags = pkt.tcp_flags;
	event->ifindex = skb->ifindex;
	event->len = skb->len;
	event->metrics = note->metrics;
	event->reason = note->last;
	event->hook = hook;
	event->flags = 0;
	event->policy = 0;
	event->tunnel_ip4 = 0;
	if (verdict == TC_ACT_SHOT) {
		event->type = FLOW_TYPE_DROP;
		event->verdict = FLOW_VERDICT_DROPPED;
	} else {
		event->type = FLOW_TYPE_TRACE;
		event->verdict = FLOW_VERDICT_FORWARDED;
	}
	event->src_identity = 0;
	event->dst_identity = 0;
	if (hook == FLOW_HOOK_FROM_TUNNEL && bpf_skb_get_tunnel_key(skb, &tunnel, sizeof(tunnel), 0) == 0) {
		event->src_identity = tunnel.tunnel_id;
		event->tunnel_ip4 = bpf_htonl(tunnel.remote_ipv4);
	} else if (hook == FLOW_HOOK_TO_POD && (skb->mark & MARK_MAGIC_MASK) == MARK_MAGIC_IDENTITY) {
		event->src_identity = skb->mark >> MARK_IDENTITY_SHIFT;
	}
	bpf_ringbuf_submit(event, BPF_RB_NO_WAKEUP_);
	return verdict;
}

#endif
