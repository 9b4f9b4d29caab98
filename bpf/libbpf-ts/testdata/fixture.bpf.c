// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/* Fixture for libbpf-ts's own tests: a few map types and one program per attach kind. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct pair {
	__u32 a;
	__u32 b;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 200000);
	__type(key, __u32);
	__type(value, struct pair);
} fixture_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} fixture_percpu SEC(".maps");

struct lpm_key {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__type(key, struct lpm_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} fixture_lpm SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	__u64 *count = bpf_map_lookup_elem(&fixture_percpu, &slot);

	if (count)
		*count += 1;
}

/* Counts, and rewrites the first byte of test-run packets marked 0xAA so tests see data out. */
SEC("tc")
int fixture_tc(struct __sk_buff *skb)
{
	__u8 first = 0;
	__u8 replaced = 0xBB;

	bump(0);
	if (bpf_skb_load_bytes(skb, 0, &first, 1) == 0 && first == 0xAA)
		bpf_skb_store_bytes(skb, 0, &replaced, 1, 0);
	return 0; /* TC_ACT_OK */
}

SEC("xdp")
int fixture_xdp(struct xdp_md *ctx)
{
	bump(1);
	return XDP_PASS;
}

SEC("cgroup/connect4")
int fixture_connect4(struct bpf_sock_addr *ctx)
{
	bump(2);
	return 1;
}
