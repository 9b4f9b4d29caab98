// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * Socket LB: cgroup sock_addr hooks. connect4/sendmsg4 replace a service VIP by a backend before
 * any packet exists (so the per-packet NAT is never needed for these sockets); recvmsg4 and
 * getpeername4 show the VIP again to the application. Attach only to per-pod or per-node cgroups:
 * cgroup hooks are not netns-scoped, on the root cgroup they would affect every process.
 */
#include "dp_common.h"
#include "dp_lb.h"

#define SOCK_ALLOW 1

static __always_inline void sock_revnat_key_fill(struct sock_revnat_key *key, __u64 cookie, __be32 addr,
						 __be16 port)
{
	key->cookie = cookie;
	key->address.ip4 = addr;
	key->port = port;
	key->family = DP_FAMILY_IPV4;
}

static __always_inline int sock4_forward(struct bpf_sock_addr *ctx)
{
	__be32 vip = ctx->user_ip4;
	__be16 vport = (__be16)ctx->user_port;
	__u8 proto = (__u8)ctx->protocol;
	struct lb_service_value *frontend = lb4_lookup_frontend(vip, vport, proto);
	struct sock_revnat_key rkey = {};
	struct sock_revnat_value rval = {};
	struct lb_backend *backend;
	__u32 backend_id;

	if (!frontend)
		return SOCK_ALLOW;
	backend_id = lb4_pick_backend_id(vip, vport, proto, frontend->count);
	backend = backend_id ? bpf_map_lookup_elem(&cm_backends, &backend_id) : NULL;
	if (!backend) {
		/* refuse rather than let the VIP leak to the wire, where nothing answers */
		count_metric(frontend->count ? METRIC_DROP_BACKEND_SLOT : METRIC_DROP_NO_BACKEND, 0);
		return 0;
	}
	sock_revnat_key_fill(&rkey, bpf_get_socket_cookie(ctx), backend->address.ip4, backend->port);
	rval.address.ip4 = vip;
	rval.port = vport;
	rval.rev_nat_index = frontend->rev_nat_index;
	bpf_map_update_elem(&cm_sock_revnat, &rkey, &rval, BPF_ANY);
	ctx->user_ip4 = backend->address.ip4;
	ctx->user_port = backend->port;
	count_metric(METRIC_SOCK_LB, 0);
	return SOCK_ALLOW;
}

static __always_inline int sock4_reverse(struct bpf_sock_addr *ctx)
{
	struct sock_revnat_key rkey = {};
	struct sock_revnat_value *rval;

	sock_revnat_key_fill(&rkey, bpf_get_socket_cookie(ctx), ctx->user_ip4, (__be16)ctx->user_port);
	rval = bpf_map_lookup_elem(&cm_sock_revnat, &rkey);
	if (rval) {
		ctx->user_ip4 = rval->address.ip4;
		ctx->user_port = rval->port;
	}
	return SOCK_ALLOW;
}

SEC("cgroup/connect4")
int cm_sock4_connect(struct bpf_sock_addr *ctx)
{
	return sock4_forward(ctx);
}

SEC("cgroup/sendmsg4")
int cm_sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	return sock4_forward(ctx);
}

SEC("cgroup/recvmsg4")
int cm_sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	return sock4_reverse(ctx);
}

SEC("cgroup/getpeername4")
int cm_sock4_getpeername(struct bpf_sock_addr *ctx)
{
	return sock4_reverse(ctx);
}
