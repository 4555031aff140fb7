/** kmesh-ts data path limits that a mesh file must respect (docs/reference/kmesh-dataplane.md). */

/** The kernel service record holds `service_port[10]`/`target_port[10]` (MAX_PORT_COUNT). */
export const MAX_SERVICE_PORTS = 10

/** The kernel backend record holds `service[10]` (MAX_SERVICE_COUNT). */
export const MAX_SERVICES_PER_WORKLOAD = 10
