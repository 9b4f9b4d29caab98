/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Flow event aggregation, the equivalent of Cilium's default monitor aggregation ("medium"): a
 * forwarded packet is reported only when its connection shows a TCP flag it has not shown before
 * (SYN, FIN, RST: Cilium's default --monitor-aggregation-flags) or when the connection was last
 * reported more than FLOW_REPORT_INTERVAL ago (--monitor-aggregation-interval, 5 s); drops are
 * always reported. So a TCP connection is reported at its SYN and its FIN or RST, a UDP stream once
 * per 5 s, a SYN retransmit not at all.
 * One difference from Cilium, for cost: a TCP segment without SYN, FIN or RST (an established
 * connection's data and ACKs, most packets) is not reported without looking at the table, so a
 * long-lived connection is not reported again every 5 s. The table costs ~10 ns a packet (hash +
 * lookup, bench/flows.ts), which would be +10 % on those packets alone. The key is taken as the
 * hook begins (flow_begin: the packet as received), the table looked at as it ends, only for a
 * forwarded packet the hook acted on: a drop (always reported) or a packet passed through costs
 * no lookup.
 * Cilium keeps the flags and the report time in its conntrack entry (__ct_update_timeout in
 * https://github.com/cilium/cilium/blob/v1.18.4/bpf/lib/conntrack.h, emit_trace_notify in
 * bpf/lib/trace.h). Our conntrack covers services only, so the state lives in a per-CPU,
 * direct-mapped table keyed by a hash of (hook, 5-tuple): no hash-map lookup, no lock; a
 * connection whose packets land on several CPUs is reported once per CPU per interval (Cilium's
 * own race allows the same), and two connections sharing a slot evict each other's state, which
 * only reports more. Userspace zeroes the table when flows are switched on (bpf/flows/source.ts).
 */
#ifndef DP_FLOW_AGG_H
#define DP_FLOW_AGG_H

#include "dp_common.h"

#define FLOW_AGG_SLOTS 1024 /* per CPU; index = the key's top 10 bits */
#define FLOW_AGG_SLOT_SHIFT 22
#define FLOW_CLOCK_SHIFT 20 /* the table keeps the coarse clock in units of 2^20 ns (~1.05 ms) */
#define FLOW_REPORT_INTERVAL ((5ULL * 1000 * 1000 * 1000) >> FLOW_CLOCK_SHIFT) /* 5 s: Cilium's CT_REPORT_INTERVAL */
#define TCP_FLAG_FIN_ 0x01
#define TCP_FLAG_RST_ 0x04
#define TCP_FLAGS_REPORTED (TCP_FLAG_FIN_ | TCP_FLAG_SYN | TCP_FLAG_RST_)

struct flow_agg_slot {
	__u32 tag;   /* the connection's key without its TCP flags (0: empty) */
	__u32 last;  /* coarse clock >> FLOW_CLOCK_SHIFT at the last report; wraps, compared by difference */
	__u32 flags; /* TCP_FLAGS_REPORTED seen since the connection was first reported */
};

struct flow_agg_table {
	struct flow_agg_slot slots[FLOW_AGG_SLOTS];
};

/* Layout mirrored by bpf/flows/source.ts (zeroed from userspace). */
_Static_assert(sizeof(struct flow_agg_table) == 12 * FLOW_AGG_SLOTS, "flow_agg_table size");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flow_agg_table);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cm_flow_agg SEC(".maps");

/* Short dependency chains (the multiplies run in parallel): a word-by-word multiply chain costs
 * ~10 ns, more than the table lookup. */
static __always_inline __u32 flow_agg_hash(const struct packet *pkt, __u32 hook)
{
	const __u32 *s = pkt->saddr.ip6_words, *d = pkt->daddr.ip6_words;
	__u32 src = (s[0] ^ s[2]) + (s[1] ^ s[3]);
	__u32 dst = (d[0] ^ d[2]) + (d[1] ^ d[3]);
	__u32 rest = ((__u32)pkt->sport << 16 | pkt->dport) ^ ((__u32)pkt->proto << 8 | hook) * 0x85ebca6b;
	__u32 hash = src * 0x9e3779b1 ^ dst * 0xc2b2ae35 ^ rest * 0x27d4eb2f;

	return (hash ^ hash >> 16) * 0x7feb352d;
}

/*
 * The packet's aggregation key, taken when the hook begins (before any translation): the hash's
 * top 23 bits (the top 10 pick the slot), bit 8 set (never 0), and the TCP flags in the low byte.
 * Not called for an established TCP segment: flow_begin leaves its key 0, and flow_end reports
 * nothing for a forwarded packet with key 0 without calling flow_agg_report. Both are functions
 * of their own (BPF-to-BPF calls) reached only off that path: inlined, the compiler kept the
 * packet's addresses in registers across the whole hook and spilled them, ~5 ns on every packet.
 */
static __noinline __u32 flow_agg_key(const struct packet *pkt, __u32 hook)
{
	return (flow_agg_hash(pkt, hook) & ~0x1ffU) | 0x100 | pkt->tcp_flags;
}

/* 1: report this forwarded packet (key: not 0); 0: aggregated. Records the report, as Cilium's
 * __ct_update_timeout does when it returns TRACE_PAYLOAD_LEN. Drops do not come here. */
static __noinline int flow_agg_report(__u32 key)
{
	__u32 zero = 0, now, seen, tag = key & ~0xffU;
	__u8 tcp_flags = key & 0xff, flags = tcp_flags & TCP_FLAGS_REPORTED;
	struct flow_agg_table *table;
	struct flow_agg_slot *slot;

	table = bpf_map_lookup_elem(&cm_flow_agg, &zero);
	if (!table)
		return 1;
	slot = &table->slots[(key >> FLOW_AGG_SLOT_SHIFT) & (FLOW_AGG_SLOTS - 1)];
	now = (__u32)(bpf_ktime_get_coarse_ns() >> FLOW_CLOCK_SHIFT);
	if (slot->tag != tag ||
	    ((tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN && (slot->flags & (TCP_FLAG_FIN_ | TCP_FLAG_RST_)))) {
		/* a connection not seen (or evicted), or a closed one opened again */
		slot->tag = tag;
		slot->flags = flags;
		slot->last = now;
		return 1;
	}
	seen = slot->flags | flags;
	if (seen == slot->flags && (__s32)(now - slot->last) < (__s32)FLOW_REPORT_INTERVAL)
		return 0;
	slot->flags = seen;
	slot->last = now;
	return 1;
}

#endif
