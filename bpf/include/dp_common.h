/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
#ifndef DP_COMMON_H
#define DP_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* UAPI constants: vmlinux.h carries types, not #defines. */
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7
#define ETH_P_IP 0x0800
#define ETH_HLEN 14
#define ETH_ALEN 6
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define BPF_F_PSEUDO_HDR_ (1ULL << 4)
#define BPF_F_MARK_MANGLED_0_ (1ULL << 5)
#define BPF_F_ZERO_CSUM_TX_ (1ULL << 1)

/* skb->mark carries the source identity from the hook that knows it (from-pod, tunnel rx)
 * to the hook that enforces policy (to-pod), like Cilium's MARK_MAGIC_IDENTITY. */
#define MARK_MAGIC_IDENTITY 0x0E
#define MARK_MAGIC_MASK 0xFF
#define MARK_IDENTITY_SHIFT 8 /* 24-bit identity above an 8-bit magic */

/* Offsets as constants: offsetof() on vmlinux.h (preserve_access_index) types
 * miscompiles into a load (machine notes §2). */
#define IP_CSUM_OFF (ETH_HLEN + 10)
#define IP_SADDR_OFF (ETH_HLEN + 12)
#define IP_DADDR_OFF (ETH_HLEN + 16)
#define TCP_CSUM_OFF 16
#define UDP_CSUM_OFF 6
#define L4_SPORT_OFF 0
#define L4_DPORT_OFF 2

#define IDENTITY_WORLD 2

char LICENSE[] SEC("license") = "GPL";

struct l4_ports {
	__be16 source;
	__be16 dest;
};

/* The parsed IPv4 headers of one packet; offsets are from the start of the frame. */
struct packet4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport; /* 0 when the protocol has no ports */
	__be16 dport;
	__u8 proto;
	__u8 has_ports;
	__u16 l4_offset;
};

/* Returns 0 and fills pkt for IPv4, 1 for traffic we leave alone (non-IPv4), <0 if malformed. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, struct packet4 *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ihl;

	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return 1;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return -1;
	ihl = ip->ihl * 4;
	if (ihl < 20)
		return -1;
	pkt->saddr = ip->saddr;
	pkt->daddr = ip->daddr;
	pkt->proto = ip->protocol;
	pkt->l4_offset = ETH_HLEN + ihl;
	pkt->has_ports = 0;
	pkt->sport = 0;
	pkt->dport = 0;
	/* fragments after the first carry no L4 header */
	if ((ip->protocol == IPPROTO_TCP_ || ip->protocol == IPPROTO_UDP_) &&
	    !(ip->frag_off & bpf_htons(0x1FFF))) {
		struct l4_ports *ports = data + ETH_HLEN + ihl;

		if ((void *)(ports + 1) > data_end)
			return -1;
		pkt->sport = ports->source;
		pkt->dport = ports->dest;
		pkt->has_ports = 1;
	}
	return 0;
}

static __always_inline __u32 l4_csum_offset(const struct packet4 *pkt)
{
	return pkt->l4_offset + (pkt->proto == IPPROTO_TCP_ ? TCP_CSUM_OFF : UDP_CSUM_OFF);
}

static __always_inline __u64 l4_csum_flags(const struct packet4 *pkt)
{
	/* a zero UDP checksum means "none" and must stay zero */
	return pkt->proto == IPPROTO_UDP_ ? BPF_F_MARK_MANGLED_0_ : 0;
}

/* Rewrites the destination (is_source=0) or source address and port, fixing L3 and L4 checksums. */
static __always_inline int rewrite_addr_port(struct __sk_buff *skb, const struct packet4 *pkt, int is_source,
					     __be32 new_addr, __be16 new_port)
{
	__be32 old_addr = is_source ? pkt->saddr : pkt->daddr;
	__be16 old_port = is_source ? pkt->sport : pkt->dport;
	__u32 csum_off = l4_csum_offset(pkt);
	__u64 mangled = l4_csum_flags(pkt);

	if (bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr, BPF_F_PSEUDO_HDR_ | mangled | sizeof(new_addr)))
		return -1;
	if (old_port != new_port &&
	    bpf_l4_csum_replace(skb, csum_off, old_port, new_port, mangled | sizeof(new_port)))
		return -1;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr, new_addr, sizeof(new_addr)))
		return -1;
	if (bpf_skb_store_bytes(skb, is_source ? IP_SADDR_OFF : IP_DADDR_OFF, &new_addr, sizeof(new_addr), 0))
		return -1;
	if (bpf_skb_store_bytes(skb, pkt->l4_offset + (is_source ? L4_SPORT_OFF : L4_DPORT_OFF), &new_port,
				sizeof(new_port), 0))
		return -1;
	return 0;
}

#endif
