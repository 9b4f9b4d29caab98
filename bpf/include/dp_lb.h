/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/* Service lookup and backend selection, shared by the per-packet and the socket LB. */
#ifndef DP_LB_H
#define DP_LB_H

#include "dp_maps.h"

static __always_inline void lb_service_key_fill(struct lb_service_key *key, const union dp_addr *vip, __u8 family,
						__be16 dport, __u8 proto, __u16 slot)
{
	key->address = *vip;
	key->dport = dport;
	key->proto = proto;
	key->family = family;
	key->backend_slot = slot;
}

static __always_inline struct lb_service_value *lb_lookup_frontend(const union dp_addr *vip, __u8 family,
								   __be16 dport, __u8 proto)
{
	struct lb_service_key key = {};

	lb_service_key_fill(&key, vip, family, dport, proto, 0);
	return bpf_map_lookup_elem(&cm_services, &key);
}

/* O(1): one random slot in 1..count, one slot lookup (the caller then looks the backend up). */
static __always_inline __u32 lb_pick_backend_id(const union dp_addr *vip, __u8 family, __be16 dport, __u8 proto,
						__u16 count)
{
	struct lb_service_key key = {};
	struct lb_service_value *slot;

	if (count == 0)
		return 0;
	lb_service_key_fill(&key, vip, family, dport, proto, (bpf_get_prandom_u32() % count) + 1);
	slot = bpf_map_lookup_elem(&cm_services, &key);
	return slot ? slot->backend_id : 0;
}

#endif
