/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * What one hook run did to the packet, noted per CPU as it happens, so the flow event emitted when
 * the hook returns (dp_flow.h) knows the drop reason and whether the packet was translated or
 * tunnelled without any code at the drop and forward sites: count_metric() notes every reason.
 * tc programs run with bottom halves disabled, so one run cannot interleave with another on a CPU
 * (the same per-CPU scratch idea as Cilium's).
 */
#ifndef DP_FLOW_NOTE_H
#define DP_FLOW_NOTE_H

#include "dp_types.h"

struct flow_note {
	__u32 metrics; /* bitmask of the enum dp_metric reasons counted during this run */
	__u8 last;     /* the last reason counted: the drop reason when the verdict is a drop */
	__u8 enabled;  /* enum flow_report (dp_flow.h): off, aggregated, every outcome */
	__be16 orig_dport;
	__u32 agg_key; /* flow_agg_key() of the packet as the run began (dp_flow_agg.h) */
	union dp_addr orig_daddr; /* destination before any translation */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flow_note);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cm_flow_note SEC(".maps");

static __always_inline struct flow_note *flow_note_slot(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cm_flow_note, &zero);
}

static __always_inline void flow_note_metric(__u32 reason)
{
	struct flow_note *note = flow_note_slot();

	if (note && reason < 32) {
		note->metrics |= 1U << reason;
		note->last = reason;
	}
}

#endif
