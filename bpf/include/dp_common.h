/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
#ifndef DP_COMMON_H
#define DP_COMMON_H

#include "vmlinux.h"
#include "dp_types.h"
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

#define ETH_P_IPV6 0x86DD
#define IPV6_HLEN 40
#define IP6_SADDR_OFF (ETH_HLEN + 8)
#define IP6_DADDR_OFF (ETH_HLEN + 24)

/* The parsed L3/L4 headers of one packet (IPv4 or IPv6); offsets are from the start of the frame.
 * Addresses sit in 16-byte dp_addr unions, zero-padded for IPv4, so map keys built from them
 * need no per-family code. */
struct packet {
	union dp_addr saddr;
	union dp_addr daddr;
	__be16 sport; /* 0 when the protocol has no ports */
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u8 has_ports;
	__u8 tcp_flags; /* TCP only (FIN SYN RST PSH ACK ... as in the header's byte 13), else 0 */
	__u16 l4_offset;
};

#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10
#define TCP_FLAGS_OFFSET 13

/* A TCP segment that opens a connection (SYN without ACK). */
static __always_inline int is_tcp_open(const struct packet *pkt)
{
	return pkt->proto == IPPROTO_TCP_ && (pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
}

static __always_inline int parse_ports(struct __sk_buff *skb, struct packet *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct l4_ports *ports;

	if (pkt->proto != IPPROTO_TCP_ && pkt->proto != IPPROTO_UDP_)
		return 0;
	ports = data + pkt->l4_offset;
	if ((void *)(ports + 1) > data_end)
		return -1;
	pkt->sport = ports->source;
	pkt->dport = ports->dest;
	pkt->has_ports = 1;
	if (pkt->proto == IPPROTO_TCP_) {
		__u8 *flags = data + pkt->l4_offset + TCP_FLAGS_OFFSET;

		if ((void *)(flags + 1) <= data_end)
			pkt->tcp_flags = *flags;
	}
	return 0;
}

/* Returns 0 and fills pkt for IPv4/IPv6, 1 for traffic we leave alone (ARP, ...), <0 if malformed.
 * IPv6 extension headers are not walked: such packets are routed but never load-balanced. */
static __always_inline int parse_packet(struct __sk_buff *skb, struct packet *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 ihl;

		if ((void *)(ip + 1) > data_end)
			return -1;
		ihl = ip->ihl * 4;
		if (ihl < 20)
			return -1;
		pkt->family = DP_FAMILY_IPV4;
		pkt->saddr.ip4 = ip->saddr;
		pkt->daddr.ip4 = ip->daddr;
		pkt->proto = ip->protocol;
		pkt->l4_offset = ETH_HLEN + ihl;
		/* fragments after the first carry no L4 header */
		if (ip->frag_off & bpf_htons(0x1FFF))
			return 0;
		return parse_ports(skb, pkt);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		pkt->family = DP_FAMILY_IPV6;
		__builtin_memcpy(&pkt->saddr, &ip6->saddr, 16);
		__builtin_memcpy(&pkt->daddr, &ip6->daddr, 16);
		pkt->proto = ip6->nexthdr;
		pkt->l4_offset = ETH_HLEN + IPV6_HLEN;
		return parse_ports(skb, pkt);
	}
	return 1;
}

static __always_inline __u32 l4_csum_offset(const struct packet *pkt)
{
	return pkt->l4_offset + (pkt->proto == IPPROTO_TCP_ ? TCP_CSUM_OFF : UDP_CSUM_OFF);
}

static __always_inline __u64 l4_csum_flags(const struct packet *pkt)
{
	/* a zero UDP checksum means "none" (IPv4) and must stay zero */
	return pkt->proto == IPPROTO_UDP_ ? BPF_F_MARK_MANGLED_0_ : 0;
}

/* Rewrites the destination (is_source=0) or source address and port, fixing the L3 (IPv4) and L4
 * checksums. new_addr must be of the packet's family. */
static __always_inline int rewrite_addr_port(struct __sk_buff *skb, const struct packet *pkt, int is_source,
					     const union dp_addr *new_addr_in, __be16 new_port)
{
	union dp_addr old_addr = is_source ? pkt->saddr : pkt->daddr;
	union dp_addr new_addr = *new_addr_in;
	__be16 old_port = is_source ? pkt->sport : pkt->dport;
	__u32 csum_off = l4_csum_offset(pkt);
	__u64 mangled = l4_csum_flags(pkt);

	if (pkt->family == DP_FAMILY_IPV4) {
		if (bpf_l4_csum_replace(skb, csum_off, old_addr.ip4, new_addr.ip4,
					BPF_F_PSEUDO_HDR_ | mangled | sizeof(new_addr.ip4)))
			return -1;
		if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr.ip4, new_addr.ip4, sizeof(new_addr.ip4)))
			return -1;
		if (bpf_skb_store_bytes(skb, is_source ? IP_SADDR_OFF : IP_DADDR_OFF, &new_addr.ip4,
					sizeof(new_addr.ip4), 0))
			return -1;
	} else {
		/* IPv6 has no header checksum; the 16-byte change goes into the L4 pseudo-header sum */
		__s64 diff = bpf_csum_diff(old_addr.ip6_words, 16, new_addr.ip6_words, 16, 0);

		if (diff < 0 || bpf_l4_csum_replace(skb, csum_off, 0, diff, BPF_F_PSEUDO_HDR_ | mangled))
			return -1;
		if (bpf_skb_store_bytes(skb, is_source ? IP6_SADDR_OFF : IP6_DADDR_OFF, new_addr.ip6, 16, 0))
			return -1;
	}
	if (old_port != new_port &&
	    bpf_l4_csum_replace(skb, csum_off, old_port, new_port, mangled | sizeof(new_port)))
		return -1;
	if (bpf_skb_store_bytes(skb, pkt->l4_offset + (is_source ? L4_SPORT_OFF : L4_DPORT_OFF), &new_port,
				sizeof(new_port), 0))
		return -1;
	return 0;
}

#endif
