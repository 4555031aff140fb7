/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The load-balancing decision of the connect path, frontend -> service -> endpoint -> backend
 * (docs/reference/kmesh-dataplane.md §3), as one function of plain inputs: `lb_resolve(in, out)` reads only `in`
 * and the maps, so the connect hooks (src/cgroup_sock.c) and the test program (src/lb_test.c) run the very
 * same code. Return codes are described in lb_types.h.
 *
 * kmesh-ts decisions where upstream Kmesh differs or is silent:
 *   - A connect that has no usable endpoint is REFUSED (-ECONNREFUSED) instead of silently passing to the
 *     VIP: empty bucket, Strict with nothing at priority 0, Failover with every bucket empty, a missing
 *     endpoint index or backend, a frontend whose upstream id is neither a service nor a backend, a service
 *     port the service does not serve. An unknown lb_policy gives -EINVAL.
 *   - A service's waypoint (address AND port set, all 16 address bytes tested) wins for every port and over
 *     every lb_policy, PASSTHROUGH included. A backend's waypoint (same test) wins over the DNAT to it and is
 *     taken before the port mapping.
 *   - Direct access to a workload IP without a waypoint leaves the connect untouched (LB_LEAVE) and records
 *     nothing; PASSTHROUGH (lb_policy 3) likewise.
 *   - An IPv4-mapped IPv6 destination is resolved as IPv4. A rewritten address is fitted to the socket
 *     (ip_fit_to_socket): IPv4 to an AF_INET6 socket as ::ffff:a.b.c.d, IPv6 to an AF_INET6 socket as it is,
 *     IPv6 to an AF_INET socket refused with -EAFNOSUPPORT (upstream copies raw bytes and connects to garbage). */
#ifndef KMESH_LB_H
#define KMESH_LB_H

#include "maps.h"
#include "waypoint.h"

/* Service access: waypoint, or policy -> endpoint -> backend -> (backend waypoint | port map + DNAT). */
static __always_inline int resolve_service(const struct service_value *svc, __u32 service_id,
					   const struct lb_input *in, struct lb_result *out)
{
	struct endpoint_key ek = {};
	struct backend_key bk = {};
	const struct endpoint_value *ep;
	const struct backend_value *backend;
	__u32 target_port = 0;
	int ret;

	if (waypoint_is_set(&svc->wp_addr, svc->waypoint_port)) {
		route_via_waypoint(&svc->wp_addr, svc->waypoint_port, out);
		return 0;
	}

	ret = select_endpoint(svc, service_id, in->random, &ek);
	if (ret != 0)
		return ret;

	ep = bpf_map_lookup_elem(&km_endpoint, &ek);
	if (!ep)
		return -ECONNREFUSED; /* a hole in the dense index: a stale count */
	bk.backend_uid = ep->backend_uid;
	backend = bpf_map_lookup_elem(&km_backend, &bk);
	if (!backend)
		return -ECONNREFUSED; /* the endpoint names a backend that is gone */

	if (waypoint_is_set(&backend->wp_addr, backend->waypoint_port)) {
		route_via_waypoint(&backend->wp_addr, backend->waypoint_port, out);
		return 0;
	}

	ret = map_service_port(svc, in->dst_port, &target_port);
	if (ret != 0)
		return ret;
	rewrite_destination(backend, target_port, out);
	return 0;
}

/* Direct access to a workload IP: only its waypoint changes the destination. */
static __always_inline int resolve_direct_access(const struct backend_value *backend, struct lb_result *out)
{
	if (waypoint_is_set(&backend->wp_addr, backend->waypoint_port)) {
		route_via_waypoint(&backend->wp_addr, backend->waypoint_port, out);
		return 0;
	}
	return LB_LEAVE;
}

/* The frontend's upstream id names a service (service access) or a backend (direct workload access); ids
 * of both kinds come from one table, so they never collide. */
static __always_inline int resolve_upstream(__u32 upstream_id, const struct lb_input *in, struct lb_result *out)
{
	struct service_key sk = { .service_id = upstream_id };
	struct backend_key bk = { .backend_uid = upstream_id };
	const struct service_value *svc;
	const struct backend_value *backend;

	svc = bpf_map_lookup_elem(&km_service, &sk);
	if (svc)
		return resolve_service(svc, upstream_id, in, out);
	backend = bpf_map_lookup_elem(&km_backend, &bk);
	if (backend)
		return resolve_direct_access(backend, out);
	return -ECONNREFUSED; /* a frontend left behind by its service or workload */
}

static __always_inline int lb_resolve(const struct lb_input *in, struct lb_result *out)
{
	struct frontend_key fk = {};
	const struct frontend_value *fe;
	int ret;

	__builtin_memset(out, 0, sizeof(*out));

	frontend_key_for(&in->dst, in->family, &fk);
	fe = bpf_map_lookup_elem(&km_frontend, &fk);
	if (!fe)
		return LB_LEAVE;

	ret = resolve_upstream(fe->upstream_id, in, out);
	if (ret == 0)
		ret = ip_fit_to_socket(&out->dnat_ip, in->family);
	if (ret != 0)
		__builtin_memset(out, 0, sizeof(*out)); /* only a rewrite carries a result */
	return ret;
}

#endif
