// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * Socket LB: cgroup sock_addr hooks for IPv4 and IPv6. connect/sendmsg replace a service VIP by a
 * backend before any packet exists (so the per-packet NAT is never needed for these sockets);
 * recvmsg and getpeername show the VIP again to the application. Attach only to per-pod or
 * per-node cgroups: cgroup hooks are not netns-scoped, on the root cgroup they would affect every
 * process on the machine.
 */
#include "dp_common.h"
#include "dp_lb.h"
#include "dp_lb_affinity.h"

#define SOCK_ALLOW 1
#define SOCK_REFUSE 0

/* is_v6 is a constant in every caller, so each hook only touches the ctx fields it may access */
static __always_inline void sock_read_addr(const struct bpf_sock_addr *ctx, int is_v6, union dp_addr *addr)
{
	if (is_v6) {
		addr->ip6_words[0] = ctx->user_ip6[0];
		addr->ip6_words[1] = ctx->user_ip6[1];
		addr->ip6_words[2] = ctx->user_ip6[2];
		addr->ip6_words[3] = ctx->user_ip6[3];
	} else {
		addr->ip4 = ctx->user_ip4;
	}
}

static __always_inline void sock_write_addr(struct bpf_sock_addr *ctx, int is_v6, const union dp_addr *addr)
{
	if (is_v6) {
		ctx->user_ip6[0] = addr->ip6_words[0];
		ctx->user_ip6[1] = addr->ip6_words[1];
		ctx->user_ip6[2] = addr->ip6_words[2];
		ctx->user_ip6[3] = addr->ip6_words[3];
	} else {
		ctx->user_ip4 = addr->ip4;
	}
}

static __always_inline void sock_revnat_key_fill(struct sock_revnat_key *key, __u64 cookie,
						 const union dp_addr *addr, __u8 family, __be16 port)
{
	key->cookie = cookie;
	key->address = *addr;
	key->port = port;
	key->family = family;
}

static __always_inline int sock_forward(struct bpf_sock_addr *ctx, int is_v6)
{
	__u8 family = is_v6 ? DP_FAMILY_IPV6 : DP_FAMILY_IPV4;
	union dp_addr vip = {};
	__be16 vport = (__be16)ctx->user_port;
	__u8 proto = (__u8)ctx->protocol;
	struct lb_service_value *frontend;
	struct sock_revnat_key rkey = {};
	struct sock_revnat_value rval = {};
	struct lb_affinity_key akey = {};
	struct lb_backend *backend;
	__u32 backend_id;

	sock_read_addr(ctx, is_v6, &vip);
	frontend = lb_lookup_frontend(&vip, family, vport, proto);
	if (!frontend)
		return SOCK_ALLOW;
	lb_affinity_key_by_netns(&akey, bpf_get_netns_cookie(ctx));
	backend_id = lb_select_backend_id(frontend, &akey, &vip, family, vport, proto);
	backend = backend_id ? bpf_map_lookup_elem(&cm_backends, &backend_id) : NULL;
	if (!backend || backend->family != family) {
		/* refuse rather than let the VIP leak to the wire, where nothing answers */
		count_metric(frontend->count ? METRIC_DROP_BACKEND_SLOT : METRIC_DROP_NO_BACKEND, 0);
		return SOCK_REFUSE;
	}
	sock_revnat_key_fill(&rkey, bpf_get_socket_cookie(ctx), &backend->address, family, backend->port);
	rval.address = vip;
	rval.port = vport;
	rval.rev_nat_index = frontend->rev_nat_index;
	bpf_map_update_elem(&cm_sock_revnat, &rkey, &rval, BPF_ANY);
	sock_write_addr(ctx, is_v6, &backend->address);
	ctx->user_port = backend->port;
	count_metric(METRIC_SOCK_LB, 0);
	return SOCK_ALLOW;
}

static __always_inline int sock_reverse(struct bpf_sock_addr *ctx, int is_v6)
{
	struct sock_revnat_key rkey = {};
	struct sock_revnat_value *rval;
	union dp_addr addr = {};

	sock_read_addr(ctx, is_v6, &addr);
	sock_revnat_key_fill(&rkey, bpf_get_socket_cookie(ctx), &addr, is_v6 ? DP_FAMILY_IPV6 : DP_FAMILY_IPV4,
			     (__be16)ctx->user_port);
	rval = bpf_map_lookup_elem(&cm_sock_revnat, &rkey);
	if (rval) {
		sock_write_addr(ctx, is_v6, &rval->address);
		ctx->user_port = rval->port;
	}
	return SOCK_ALLOW;
}

SEC("cgroup/connect4")
int cm_sock4_connect(struct bpf_sock_addr *ctx)
{
	return sock_forward(ctx, 0);
}

SEC("cgroup/sendmsg4")
int cm_sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	return sock_forward(ctx, 0);
}

SEC("cgroup/recvmsg4")
int cm_sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	return sock_reverse(ctx, 0);
}

SEC("cgroup/getpeername4")
int cm_sock4_getpeername(struct bpf_sock_addr *ctx)
{
	return sock_reverse(ctx, 0);
}

SEC("cgroup/connect6")
int cm_sock6_connect(struct bpf_sock_addr *ctx)
{
	return sock_forward(ctx, 1);
}

SEC("cgroup/sendmsg6")
int cm_sock6_sendmsg(struct bpf_sock_addr *ctx)
{
	return sock_forward(ctx, 1);
}

SEC("cgroup/recvmsg6")
int cm_sock6_recvmsg(struct bpf_sock_addr *ctx)
{
	return sock_reverse(ctx, 1);
}

SEC("cgroup/getpeername6")
int cm_sock6_getpeername(struct bpf_sock_addr *ctx)
{
	return sock_reverse(ctx, 1);
}
