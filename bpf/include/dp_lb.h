/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/* Service lookup and backend selection, shared by the per-packet and the socket LB. */
#ifndef DP_LB_H
#define DP_LB_H

#include "dp_maps.h"

static __always_inline struct lb_service_value *lb4_lookup_frontend(__be32 vip, __be16 dport, __u8 proto)
{
	struct lb_service_key key = {};

	key.address.ip4 = vip;
	key.dport = dport;
	key.proto = proto;
	key.family = DP_FAMILY_IPV4;
	return bpf_map_lookup_elem(&cm_services, &key);
}

/* O(1): one random slot in 1..count, one slot lookup, one backend lookup. */
static __always_inline __u32 lb4_pick_backend_id(__be32 vip, __be16 dport, __u8 proto, __u16 count)
{
	struct lb_service_key key = {};
	struct lb_service_value *slot;

	if (count == 0)
		return 0;
	key.address.ip4 = vip;
	key.dport = dport;
	key.proto = proto;
	key.family = DP_FAMILY_IPV4;
	key.backend_slot = (bpf_get_prandom_u32() % count) + 1;
	slot = bpf_map_lookup_elem(&cm_services, &key);
	return slot ? slot->backend_id : 0;
}

#endif
