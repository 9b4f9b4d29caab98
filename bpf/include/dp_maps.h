/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Map definitions. Every object includes this header and every map is pinned by name, so
 * the loader opens all objects with the same pin root and they share one set of maps per node.
 * Unused maps in an object are still created/reused: that is what keeps the layouts identical.
 */
#ifndef DP_MAPS_H
#define DP_MAPS_H

#include "dp_types.h"
#include "dp_flow_note.h"

#define DP_PIN __uint(pinning, LIBBPF_PIN_BY_NAME)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, struct lb_service_key);
	__type(value, struct lb_service_value);
	DP_PIN;
} cm_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct lb_backend);
	DP_PIN;
} cm_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u16);
	__type(value, struct lb_rev_nat);
	DP_PIN;
} cm_rev_nat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
	DP_PIN;
} cm_conntrack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	DP_PIN;
} cm_ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	DP_PIN;
} cm_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dp_config);
	DP_PIN;
} cm_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dp_trace);
	DP_PIN;
} cm_trace SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sock_revnat_key);
	__type(value, struct sock_revnat_value);
	DP_PIN;
} cm_sock_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, METRIC_MAX);
	__type(key, __u32);
	__type(value, struct dp_metric_value);
	DP_PIN;
} cm_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dp_node_config);
	DP_PIN;
} cm_node SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ct_key);
	__type(value, struct nodeport_nat);
	DP_PIN;
} cm_nodeport SEC(".maps");

static __always_inline void count_metric(__u32 reason, __u32 bytes)
{
	struct dp_metric_value *value = bpf_map_lookup_elem(&cm_metrics, &reason);

	flow_note_metric(reason);
	if (value) {
		/* per-CPU slot: no atomics needed */
		value->packets += 1;
		value->bytes += bytes;
	}
}

static __always_inline struct dp_config *load_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cm_config, &zero);
}

/* NULL when the agent has not configured the node (no NodePort on the underlay yet) */
static __always_inline struct dp_node_config *load_node_config(void)
{
	__u32 zero = 0;
	struct dp_node_config *node = bpf_map_lookup_elem(&cm_node, &zero);

	return node && node->node_ip4 ? node : NULL;
}

static __always_inline struct dp_trace *trace_slot(const struct dp_config *config)
{
	__u32 zero = 0;

	if (!config || !(config->flags & DP_CONFIG_TRACE))
		return NULL;
	return bpf_map_lookup_elem(&cm_trace, &zero);
}

#endif
