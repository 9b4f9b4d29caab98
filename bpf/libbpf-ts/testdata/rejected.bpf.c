// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/* Fixture: compiles, but the verifier must reject it (map value used without a NULL check). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH); /* array lookups with a constant key are proven non-NULL */
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rejected_array SEC(".maps");

SEC("tc")
int rejected_prog(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *value = bpf_map_lookup_elem(&rejected_array, &zero);

	return *value;
}
