/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * ClientIP session affinity (Service spec.sessionAffinity: ClientIP): a client's new connections
 * to a service port go to the backend its last one went to, while it came back within
 * sessionAffinityConfig.clientIP.timeoutSeconds (as kube-proxy's `-m recent --rcheck --seconds
 * <timeout>` / `--set`: the time counts from the client's last new connection). Like Cilium's
 * lb4_affinity map (https://github.com/cilium/cilium/blob/main/bpf/lib/lb.h), keyed by the client
 * and the service's rev-NAT index; the per-packet path keys by client address, the socket LB (no
 * source address yet at connect) by the client's network namespace cookie, i.e. the pod.
 *
 * The frontend entry (slot 0) carries the flag in `flags` and the timeout in seconds in its
 * otherwise unused `backend_id`. An entry stores the backend's slot too: it is used only while
 * that slot of this service still holds that backend, so a removed backend (or a backend id
 * reused elsewhere) is never chosen from a stale entry; the client then gets a fresh pick.
 */
#ifndef DP_LB_AFFINITY_H
#define DP_LB_AFFINITY_H

#include "dp_lb.h"

#define LB_FLAG_AFFINITY 0x1 /* lb_service_value.flags of slot 0 */

#define LB_AFFINITY_BY_ADDR 0
#define LB_AFFINITY_BY_NETNS 1

struct lb_affinity_key {
	union dp_addr client; /* client address, or (by netns) the netns cookie in the first 8 bytes */
	__u16 rev_nat_index;  /* the service port */
	__u8 family;
	__u8 kind; /* LB_AFFINITY_BY_* */
};

struct lb_affinity_value {
	__u64 last_used_ns;
	__u32 backend_id;
	__u16 slot;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lb_affinity_key);
	__type(value, struct lb_affinity_value);
	DP_PIN;
} cm_lb_affinity SEC(".maps");

/*
 * The backend id for a new flow: with affinity, the client's recorded backend when still valid,
 * else a random slot that is then recorded; without, a random slot (lb_pick_backend_id).
 */
static __always_inline __u32 lb_select_backend_id(const struct lb_service_value *frontend,
						  struct lb_affinity_key *akey, const union dp_addr *vip,
						  __u8 family, __be16 dport, __u8 proto)
{
	struct lb_affinity_value *recorded;
	struct lb_affinity_value fresh = {};
	struct lb_service_key skey = {};
	struct lb_service_value *slot;
	__u64 now;

	if (!(frontend->flags & LB_FLAG_AFFINITY) || frontend->count == 0)
		return lb_pick_backend_id(vip, family, dport, proto, frontend->count);
	akey->rev_nat_index = frontend->rev_nat_index;
	akey->family = family;
	now = bpf_ktime_get_ns();
	recorded = bpf_map_lookup_elem(&cm_lb_affinity, akey);
	if (recorded && now - recorded->last_used_ns <= (__u64)frontend->backend_id * 1000000000ULL) {
		lb_service_key_fill(&skey, vip, family, dport, proto, recorded->slot);
		slot = bpf_map_lookup_elem(&cm_services, &skey);
		if (slot && recorded->slot >= 1 && recorded->slot <= frontend->count &&
		    slot->backend_id == recorded->backend_id) {
			recorded->last_used_ns = now;
			return recorded->backend_id;
		}
	}
	fresh.slot = (bpf_get_prandom_u32() % frontend->count) + 1;
	lb_service_key_fill(&skey, vip, family, dport, proto, fresh.slot);
	slot = bpf_map_lookup_elem(&cm_services, &skey);
	if (!slot)
		return 0;
	fresh.backend_id = slot->backend_id;
	fresh.last_used_ns = now;
	bpf_map_update_elem(&cm_lb_affinity, akey, &fresh, BPF_ANY);
	return fresh.backend_id;
}

/* The per-packet paths' key: the client's address. */
static __always_inline void lb_affinity_key_by_addr(struct lb_affinity_key *akey, const union dp_addr *client)
{
	akey->client = *client;
	akey->kind = LB_AFFINITY_BY_ADDR;
}

/* The socket LB's key: the client's network namespace (cookie), i.e. its pod. */
static __always_inline void lb_affinity_key_by_netns(struct lb_affinity_key *akey, __u64 netns_cookie)
{
	akey->client.ip6_words[0] = (__u32)netns_cookie;
	akey->client.ip6_words[1] = (__u32)(netns_cookie >> 32);
	akey->kind = LB_AFFINITY_BY_NETNS;
}

#endif
