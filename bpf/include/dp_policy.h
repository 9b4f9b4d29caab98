/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Network policy enforcement by numeric identity: egress at from-pod, ingress at to-pod (which sees
 * local pods' traffic and the tunnel's, with the source identity in skb->mark).
 *  1. no policy selects the endpoint: pass, no lookup; enforced only in the other direction: the
 *     connection is recorded (its replies come back through the enforced direction) and passes;
 *  2. policy conntrack (cm_policy_ct): an allowed connection, or the reply of one, passes if its entry
 *     carries the endpoint slot's current policy revision (cm_policy_rev); an entry of an older
 *     revision (the policy narrowed since) has its connection judged again as it was opened;
 *  3. cm_policy: at most 10 exact-key hash probes, only at levels the endpoint has entries for
 *     (EP_F_*_LEVELS); the first hit is the verdict because the agent resolved "deny wins" when it
 *     wrote the entries; no hit = default deny. Allowed → one conntrack entry for both directions.
 * The cost does not depend on how many rules or identities there are: each probe is one hash lookup.
 * Modelled on Cilium's bpf/lib/policy.h (https://github.com/cilium/cilium/blob/main/bpf/lib/policy.h),
 * which probes an LPM map instead.
 */
#ifndef DP_POLICY_H
#define DP_POLICY_H

#include "dp_forward.h"

#define IDENTITY_HOST 1
#define IDENTITY_REMOTE_NODE 6
#define IDENTITY_RESERVED_LIMIT 256
#define IDENTITY_CLUSTER_SHIFT 16
#define IDENTITY_CLUSTER_MASK 0xFF
#define IPPROTO_ICMP_ 1
#define IPPROTO_ICMPV6_ 58

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	DP_PIN;
} cm_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ct_key);
	__type(value, struct policy_ct_entry);
	DP_PIN;
} cm_policy_ct SEC(".maps");

/* Per endpoint policy slot (endpoint_info.flags >> EP_F_POLICY_ID_SHIFT): the revision of its
 * policy. The agent bumps it when the policy narrows (an entry deleted or turned deny, a direction
 * newly enforced), after writing cm_policy: connection entries of older revisions are judged again. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, POLICY_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
	DP_PIN;
} cm_policy_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct policy_drop_key);
	__type(value, __u64);
	DP_PIN;
} cm_policy_drops SEC(".maps");

static __always_inline int endpoint_enforces(const struct endpoint_info *ep, __u8 direction)
{
	return ep && (ep->flags & (direction == POLICY_DIR_INGRESS ? EP_F_INGRESS_ENFORCED : EP_F_EGRESS_ENFORCED));
}

/* Either direction enforced, or deny entries in an unenforced one: the hook must run policy_enforce
 * (which also records connections in an unenforced direction, whose replies the enforced one must
 * let in). */
static __always_inline int endpoint_has_policy(const struct endpoint_info *ep)
{
	return ep && (ep->flags & (EP_F_INGRESS_ENFORCED | EP_F_EGRESS_ENFORCED |
				   (EP_F_LEVELS_MASK << EP_F_INGRESS_LEVELS_SHIFT) |
				   (EP_F_LEVELS_MASK << EP_F_EGRESS_LEVELS_SHIFT)));
}

/* The (sport, dport) a policy conntrack key holds: the ports, or for ICMP echo the echo id twice
 * (request and reply then have mirrored tuples like TCP/UDP). 0 = ICMP that is not an echo. */
struct policy_l4 {
	__be16 sport;
	__be16 dport;
	__u8 icmp_error; /* an ICMP error: its embedded packet decides (policy_related) */
	__u8 icmp_neighbor; /* ICMPv6 neighbour/router discovery: always passes */
};

/* pkt->l4_offset re-bounded for the verifier: once pkt is spilled to the stack the reloaded u16 may
 * be anything up to 0xffff, and data + 0xffff + 8 is never proven inside the packet (the program
 * is refused, "R2 offset is outside of the packet"). parse_packet sets at most ETH_HLEN + 60. */
static __always_inline __u32 policy_l4_offset(const struct packet *pkt)
{
	__u32 offset = pkt->l4_offset;

	return offset > ETH_HLEN + 60 ? ETH_HLEN + 60 : offset;
}

static __always_inline int policy_l4_parse(struct __sk_buff *skb, const struct packet *pkt, struct policy_l4 *l4)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *icmp;

	l4->sport = pkt->sport;
	l4->dport = pkt->dport;
	if (pkt->proto != IPPROTO_ICMP_ && pkt->proto != IPPROTO_ICMPV6_)
		return 0;
	icmp = data + policy_l4_offset(pkt);
	if ((void *)(icmp + 8) > data_end)
		return -1;
	__u8 type = icmp[0];

	if (pkt->proto == IPPROTO_ICMP_) {
		if (type == 0 || type == 8) /* echo reply / request */
			goto echo;
		l4->icmp_error = type == 3 || type == 11 || type == 12; /* unreachable, time exceeded, param */
		return 0;
	}
	if (type == 128 || type == 129)
		goto echo;
	l4->icmp_error = type >= 1 && type <= 4;
	l4->icmp_neighbor = type >= 133 && type <= 137;
	return 0;
echo:
	__builtin_memcpy(&l4->sport, icmp + 4, 2);
	l4->dport = l4->sport;
	return 0;
}

/* Whether a sorts before b (addresses of one family; the unused words of IPv4 are zero). */
static __always_inline int addr_before(const union dp_addr *a, const union dp_addr *b)
{
	for (int i = 0; i < 4; i++) {
		__u32 x = bpf_ntohl(a->ip6_words[i]), y = bpf_ntohl(b->ip6_words[i]);

		if (x != y)
			return x < y;
	}
	return 0;
}

/* One key per connection and endpoint, the same for both directions of the connection: the tuple
 * with the lower address first, and which of the two addresses is the endpoint's (direction = 0:
 * the first). A request and its replies, egress and ingress, all find the one entry, so a new
 * connection costs one insert and every later packet one lookup. */
static __always_inline void policy_ct_key(struct ct_key *key, const union dp_addr *saddr, const union dp_addr *daddr,
					  __be16 sport, __be16 dport, __u8 proto, __u8 family, int endpoint_is_source)
{
	int swap = addr_before(daddr, saddr);

	key->saddr = swap ? *daddr : *saddr;
	key->daddr = swap ? *saddr : *daddr;
	key->sport = swap ? dport : sport;
	key->dport = swap ? sport : dport;
	key->proto = proto;
	key->family = family;
	key->direction = endpoint_is_source ^ !swap; /* 0: the endpoint is key->saddr */
}

/* now: bpf_ktime_get_coarse_ns() >> POLICY_CT_TIME_SHIFT. Refreshes last_seen at most once a unit. */
static __always_inline int policy_ct_live(struct policy_ct_entry *entry, __u8 proto, __u32 now)
{
	__u32 lifetime = proto == IPPROTO_TCP_ ? POLICY_CT_LIFETIME_TCP : POLICY_CT_LIFETIME_NONTCP;

	if (now - entry->last_seen > lifetime)
		return 0;
	if (entry->last_seen != now)
		entry->last_seen = now;
	return 1;
}

static __always_inline __u32 policy_revision(__u16 policy_id)
{
	__u32 slot = policy_id;
	__u32 *revision = bpf_map_lookup_elem(&cm_policy_rev, &slot);

	return revision ? *revision & POLICY_CT_REV_MASK : 0;
}

/* An ICMP error about a connection this endpoint's policy let through: the embedded header is the
 * packet the error answers. */
static __always_inline int policy_related(struct __sk_buff *skb, const struct packet *pkt, __u8 direction, __u32 now,
					  __u32 revision)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	union dp_addr inner_saddr = {}, inner_daddr = {};
	struct ct_key key = {};
	struct policy_ct_entry *entry;
	__u32 inner = policy_l4_offset(pkt) + 8;
	__u32 inner_l4;
	__be16 *ports, sport = 0, dport = 0;
	__u8 proto;

	if (pkt->family == DP_FAMILY_IPV4) {
		struct iphdr *ip = data + inner;

		if ((void *)(ip + 1) > data_end)
			return 0;
		inner_saddr.ip4 = ip->saddr;
		inner_daddr.ip4 = ip->daddr;
		proto = ip->protocol;
		inner_l4 = inner + 20; /* options in an embedded header are rare enough to deny */
		if (ip->ihl != 5)
			return 0;
	} else {
		struct ipv6hdr *ip6 = data + inner;

		if ((void *)(ip6 + 1) > data_end)
			return 0;
		__builtin_memcpy(&inner_saddr, &ip6->saddr, 16);
		__builtin_memcpy(&inner_daddr, &ip6->daddr, 16);
		proto = ip6->nexthdr;
		inner_l4 = inner + IPV6_HLEN;
	}
	ports = data + inner_l4;
	if ((void *)(ports + 2) > data_end)
		return 0;
	if (proto == IPPROTO_TCP_ || proto == IPPROTO_UDP_) {
		sport = ports[0];
		dport = ports[1];
	} else if (proto == IPPROTO_ICMP_ || proto == IPPROTO_ICMPV6_) {
		sport = ports[1]; /* the echo id */
		dport = ports[1];
	}
	/* the embedded packet is one the endpoint sent (an egress error comes back in) or one the
	 * endpoint received (the error goes out): the endpoint's address is its source iff ingress */
	policy_ct_key(&key, &inner_saddr, &inner_daddr, sport, dport, proto, pkt->family, direction == POLICY_DIR_INGRESS);
	entry = bpf_map_lookup_elem(&cm_policy_ct, &key);
	/* of a connection judged under an older policy: not before a packet of its own is judged again */
	return entry && (entry->revision & POLICY_CT_REV_MASK) == revision && policy_ct_live(entry, key.proto, now);
}

static __always_inline struct policy_entry *policy_probe(struct policy_key *key, __u32 levels, __u32 bit,
							  __u8 level, __u8 proto, __u16 port)
{
	if (!(levels & (1U << bit)))
		return NULL;
	key->level = level;
	key->proto = proto;
	key->port = port;
	return bpf_map_lookup_elem(&cm_policy, key);
}

/* The entry that decides, most specific first (the probe order is the levels' bit order); NULL = no
 * rule matched (default deny). */
static __always_inline struct policy_entry *policy_match(__u16 policy_id, __u8 direction, __u32 levels,
							  __u32 identity, __u8 proto, __u16 port, int has_port)
{
	struct policy_key key = {};
	struct policy_entry *entry;
	int round;

	key.policy_id = policy_id;
	key.direction = direction;
#pragma unroll
	for (round = 0; round < 2; round++) {
		__u32 base = round * POLICY_LEVELS;

		key.identity = round ? 0 : identity;
		if (has_port) {
			entry = policy_probe(&key, levels, base + POLICY_LEVEL_PORT, POLICY_LEVEL_PORT, proto, port);
			if (entry)
				return entry;
			entry = policy_probe(&key, levels, base + POLICY_LEVEL_BLOCK16, POLICY_LEVEL_BLOCK16, proto,
					     port & 0xfff0);
			if (entry)
				return entry;
			entry = policy_probe(&key, levels, base + POLICY_LEVEL_BLOCK256, POLICY_LEVEL_BLOCK256, proto,
					     port & 0xff00);
			if (entry)
				return entry;
		}
		entry = policy_probe(&key, levels, base + POLICY_LEVEL_PROTO, POLICY_LEVEL_PROTO, proto, 0);
		if (entry)
			return entry;
		entry = policy_probe(&key, levels, base + POLICY_LEVEL_ANY, POLICY_LEVEL_ANY, 0, 0);
		if (entry)
			return entry;
	}
	return NULL;
}

static __always_inline void policy_count_drop(__u16 policy_id, __u8 direction, __u32 rule)
{
	struct policy_drop_key key = {};
	__u64 *packets, one = 1;

	key.policy_id = policy_id;
	key.direction = direction;
	key.rule = rule;
	packets = bpf_map_lookup_elem(&cm_policy_drops, &key);
	if (packets)
		*packets += 1; /* per-CPU value */
	else
		bpf_map_update_elem(&cm_policy_drops, &key, &one, BPF_NOEXIST);
}

static __always_inline __u32 endpoint_levels(const struct endpoint_info *ep, __u8 direction)
{
	return (ep->flags >> (direction == POLICY_DIR_INGRESS ? EP_F_INGRESS_LEVELS_SHIFT : EP_F_EGRESS_LEVELS_SHIFT)) &
	       EP_F_LEVELS_MASK;
}

/* Whether the endpoint's policy in this direction, probed at these levels, lets a connection to port
 * (host order) open with peer; *rule: the rule of the entry that decided (0: none, the default). An
 * unenforced direction holds deny entries only (a policy with default deny off): they deny, anything
 * else passes. */
static __always_inline int policy_admits(const struct endpoint_info *ep, __u16 policy_id, __u8 direction, __u32 levels,
					 __u32 peer, __u8 proto, __u16 port, int has_port, __u32 *rule)
{
	struct policy_entry *verdict =
		levels ? policy_match(policy_id, direction, levels, peer, proto, port, has_port) : NULL;

	*rule = verdict ? verdict->rule : 0;
	if (endpoint_enforces(ep, direction))
		return verdict && verdict->verdict == POLICY_ALLOW;
	return !verdict || verdict->verdict != POLICY_DENY;
}

/* Admitted at the first POLICY_QUICK_LEVELS levels the endpoint has in this direction: a hit there
 * is the verdict all levels would give (the first hit decides); no hit there is an answer only when
 * there are no further levels (an unenforced direction passes what no deny entry matches).
 * 0: denied, or not known without more probes. */
static __always_inline int policy_admits_quickly(const struct endpoint_info *ep, __u16 policy_id, __u8 direction,
						 __u32 peer, __u8 proto, __u16 port, int has_port)
{
	__u32 levels = endpoint_levels(ep, direction), quick = 0, rest = levels, rule;

#pragma unroll
	for (int i = 0; i < POLICY_QUICK_LEVELS; i++) {
		quick |= rest & -rest; /* the lowest level left: the next probe */
		rest &= rest - 1;
	}
	if (rest && !endpoint_enforces(ep, direction))
		return 0;
	return policy_admits(ep, policy_id, direction, quick, peer, proto, port, has_port, &rule);
}

/* The verdict of the endpoint's policy on this packet in this direction (peer = the other side's
 * identity): TC_ACT_OK, or TC_ACT_SHOT counted as METRIC_DROP_POLICY and per rule.
 * Quick path: when the packet is admitted at the first POLICY_QUICK_LEVELS levels of this direction
 * and a reply to it would be at those of the other, the verdicts of the connection are a pure
 * function of its packets and the policy: the packet passes with no conntrack lookup, and its
 * connection gets no entry. That spares a new connection the LRU insert, which was most of its cost
 * (bench/policy.ts), and makes a narrowed policy apply at once. Anything else takes the tracked
 * path: the conntrack entry, or all levels and an entry for the connection. */
static __always_inline int policy_enforce(struct __sk_buff *skb, const struct packet *pkt,
					  const struct endpoint_info *ep, __u8 direction, __u32 peer)
{
	struct policy_l4 l4 = {};
	struct ct_key key = {};
	struct policy_ct_entry *entry, fresh = {};
	__u32 now, revision, rule;
	__u8 reverse = direction == POLICY_DIR_INGRESS ? POLICY_DIR_EGRESS : POLICY_DIR_INGRESS;
	__u8 judged = direction;
	__u16 policy_id, port;

	if (!endpoint_has_policy(ep))
		return TC_ACT_OK;
	/* the node itself reaches its pods (kubelet probes), as Cilium's allow-localhost default */
	if (direction == POLICY_DIR_INGRESS && peer == IDENTITY_HOST && endpoint_enforces(ep, direction))
		return TC_ACT_OK;
	policy_id = ep->flags >> EP_F_POLICY_ID_SHIFT;
	if (policy_l4_parse(skb, pkt, &l4))
		goto drop_invalid;
	if (l4.icmp_neighbor)
		return TC_ACT_OK;
	port = bpf_ntohs(pkt->dport);
	if (policy_admits_quickly(ep, policy_id, direction, peer, pkt->proto, port, pkt->has_ports) &&
	    policy_admits_quickly(ep, policy_id, reverse, peer, pkt->proto, bpf_ntohs(pkt->sport), pkt->has_ports))
		return TC_ACT_OK;

	now = bpf_ktime_get_coarse_ns() >> POLICY_CT_TIME_SHIFT;
	revision = policy_revision(policy_id);
	policy_ct_key(&key, &pkt->saddr, &pkt->daddr, l4.sport, l4.dport, pkt->proto, pkt->family,
		      direction == POLICY_DIR_EGRESS);
	entry = bpf_map_lookup_elem(&cm_policy_ct, &key);
	if (entry && policy_ct_live(entry, pkt->proto, now)) {
		if ((entry->revision & POLICY_CT_REV_MASK) == revision)
			return TC_ACT_OK;
		/* the policy narrowed since: the connection is judged again as it was opened (a reply's
		 * source port is the request's destination port) */
		judged = entry->revision & POLICY_CT_F_EGRESS ? POLICY_DIR_EGRESS : POLICY_DIR_INGRESS;
		if (judged != direction)
			port = bpf_ntohs(pkt->sport);
	} else {
		entry = NULL;
		if (l4.icmp_error && policy_related(skb, pkt, direction, now, revision))
			return TC_ACT_OK;
	}
	if (!policy_admits(ep, policy_id, judged, endpoint_levels(ep, judged), peer, pkt->proto, port, pkt->has_ports,
			   &rule)) {
		/* a stale entry stays: its connection's packets keep being judged (and pass again if the
		 * policy widens); deleting it would let a reply re-open the connection the other way */
		policy_count_drop(policy_id, judged, rule);
		count_metric(METRIC_DROP_POLICY, skb->len);
		return TC_ACT_SHOT;
	}
	if (entry) {
		entry->revision = (entry->revision & POLICY_CT_F_EGRESS) | revision;
		return TC_ACT_OK;
	}
	/* ICMP errors are never connections of their own. A connection opened in a direction without
	 * policy of its own is recorded all the same (its replies need the entry, or the quick path
	 * would have passed the packet); Cilium tracks every connection likewise. */
	if (!l4.icmp_error) {
		fresh.last_seen = now;
		fresh.revision = revision | (direction == POLICY_DIR_EGRESS ? POLICY_CT_F_EGRESS : 0);
		bpf_map_update_elem(&cm_policy_ct, &key, &fresh, BPF_ANY);
	}
	return TC_ACT_OK;
drop_invalid:
	count_metric(METRIC_DROP_INVALID, skb->len);
	return TC_ACT_SHOT;
}

/* The identity a packet from the tunnel may claim. Cluster ids live in bits 16-23 of an identity
 * (reference: cilium-clustermesh.md §identities); an identity whose cluster is not the one owning
 * the sending node is a forgery (or a misconfiguration) and gets no selector's trust: world. A
 * node's own host identity arriving over the tunnel is that node, i.e. remote-node. Senders the
 * ipcache does not know as nodes get world too. */
static __always_inline __u32 tunnel_source_identity(__u32 claimed, __be32 sender_ip4, struct __sk_buff *skb)
{
	union dp_addr sender = {};
	struct ipcache_value *node;

	if (claimed == IDENTITY_HOST)
		return IDENTITY_REMOTE_NODE;
	if (claimed < IDENTITY_RESERVED_LIMIT)
		return claimed;
	sender.ip4 = sender_ip4;
	node = lookup_ipcache(&sender, DP_FAMILY_IPV4);
	if (node && node->cluster_id && ((claimed >> IDENTITY_CLUSTER_SHIFT) & IDENTITY_CLUSTER_MASK) == node->cluster_id)
		return claimed;
	count_metric(METRIC_POLICY_FORGED_IDENTITY, skb->len);
	return IDENTITY_WORLD;
}

#endif
