/**
 * One codec per map record, equal to the C structs in @kmesh-ts/bpf-progs/include (the four load-balancing
 * records are byte-compatible with upstream Kmesh: docs/reference/kmesh-dataplane.md §2.3).
 */
import { checkRange, readU32, readU64, writeU32, writeU64, type Codec } from './codec.js'
import { decodeIpAddr, encodeIpAddr, isZeroIpAddr, type IpInput } from './ip.js'
import { decodeNetPort, encodeNetPort } from './port.js'

import { LB_POLICY, MAX_PORT_COUNT, MAX_SERVICE_COUNT, PRIO_COUNT } from '@kmesh-ts/kernel-abi'

// The capacities are the C headers' (generated into @kmesh-ts/kernel-abi); re-exported for existing importers.
export { MAX_PORT_COUNT, MAX_SERVICE_COUNT, PRIO_COUNT }

/** Kernel lb_policy values (0..2 as Kmesh; 3 is our PASSTHROUGH extension): kernel-abi's LB_POLICY. */
export const LbPolicy = LB_POLICY

function u32Codec(cStruct: string): Codec<number> {
  return {
    cStruct,
    size: 4,
    encode: (v, buf, off = 0) => {
      checkRange(cStruct, v, 0xffffffff)
      writeU32(buf, off, v)
    },
    decode: (buf, off = 0) => readU32(buf, off),
  }
}

/** A waypoint: the address and the HBONE port the connect is sent to instead of the backend. */
export interface Waypoint {
  address: string
  port: number
}
type WaypointInput = { address: IpInput; port: number }

function encodeWaypoint(wp: WaypointInput | undefined, buf: Uint8Array, addrOff: number, portOff: number): void {
  if (wp) {
    encodeIpAddr(wp.address, buf, addrOff)
    encodeNetPort(wp.port, buf, portOff)
  } else {
    buf.fill(0, addrOff, addrOff + 16)
    writeU32(buf, portOff, 0)
  }
}

function decodeWaypoint(buf: Uint8Array, addrOff: number, portOff: number): Waypoint | undefined {
  const port = decodeNetPort(buf, portOff)
  if (port === 0 && isZeroIpAddr(buf, addrOff)) return undefined
  return { address: decodeIpAddr(buf, addrOff), port }
}

// --- frontend: VIP or workload IP -> upstream id -------------------------------------------------------------

export interface FrontendKey {
  address: string
}
export const frontendKey: Codec<FrontendKey | { address: IpInput }> & Codec<FrontendKey> = {
  cStruct: 'frontend_key',
  size: 16,
  encode: (v, buf, off = 0) => encodeIpAddr(v.address, buf, off),
  decode: (buf, off = 0) => ({ address: decodeIpAddr(buf, off) }),
}

export interface FrontendValue {
  upstreamId: number
}
export const frontendValue: Codec<FrontendValue> = {
  cStruct: 'frontend_value',
  size: 4,
  encode: (v, buf, off = 0) => u32Codec('upstream_id').encode(v.upstreamId, buf, off),
  decode: (buf, off = 0) => ({ upstreamId: readU32(buf, off) }),
}

// --- service ------------------------------------------------------------------------------------------------

export interface ServiceKey {
  serviceId: number
}
export const serviceKey: Codec<ServiceKey> = {
  cStruct: 'service_key',
  size: 4,
  encode: (v, buf, off = 0) => u32Codec('service_id').encode(v.serviceId, buf, off),
  decode: (buf, off = 0) => ({ serviceId: readU32(buf, off) }),
}

export interface ServicePort {
  servicePort: number
  targetPort: number
}
export interface ServiceValue {
  /** Endpoints per priority (length PRIO_COUNT; shorter arrays are zero-filled). */
  prioEndpointCount: number[]
  lbPolicy: number
  /** Up to MAX_PORT_COUNT mappings; the first matching service port wins in the kernel. */
  ports: ServicePort[]
  waypoint?: Waypoint | undefined
}
const SVC = { count: 0, lbPolicy: 28, servicePort: 32, targetPort: 72, wpAddr: 112, wpPort: 128 } as const
export const serviceValue: Codec<
  ServiceValue | (Omit<ServiceValue, 'waypoint'> & { waypoint?: WaypointInput | undefined })
> &
  Codec<ServiceValue> = {
  cStruct: 'service_value',
  size: 132,
  encode(v, buf, off = 0) {
    if (v.prioEndpointCount.length > PRIO_COUNT)
      throw new RangeError(`prioEndpointCount has ${v.prioEndpointCount.length} entries, at most ${PRIO_COUNT}`)
    if (v.ports.length > MAX_PORT_COUNT)
      throw new RangeError(`a service holds at most ${MAX_PORT_COUNT} ports, got ${v.ports.length}`)
    for (let p = 0; p < PRIO_COUNT; p++) writeU32(buf, off + SVC.count + 4 * p, v.prioEndpointCount[p] ?? 0)
    checkRange('lbPolicy', v.lbPolicy, 0xffffffff)
    writeU32(buf, off + SVC.lbPolicy, v.lbPolicy)
    for (let i = 0; i < MAX_PORT_COUNT; i++) {
      const port = v.ports[i]
      encodeNetPort(port?.servicePort ?? 0, buf, off + SVC.servicePort + 4 * i)
      encodeNetPort(port?.targetPort ?? 0, buf, off + SVC.targetPort + 4 * i)
    }
    encodeWaypoint(v.waypoint, buf, off + SVC.wpAddr, off + SVC.wpPort)
  },
  decode(buf, off = 0) {
    const prioEndpointCount = Array.from({ length: PRIO_COUNT }, (_, p) => readU32(buf, off + SVC.count + 4 * p))
    const ports: ServicePort[] = []
    for (let i = 0; i < MAX_PORT_COUNT; i++) {
      const servicePort = decodeNetPort(buf, off + SVC.servicePort + 4 * i)
      const targetPort = decodeNetPort(buf, off + SVC.targetPort + 4 * i)
      if (servicePort !== 0 || targetPort !== 0) ports.push({ servicePort, targetPort })
    }
    return {
      prioEndpointCount,
      lbPolicy: readU32(buf, off + SVC.lbPolicy),
      ports,
      waypoint: decodeWaypoint(buf, off + SVC.wpAddr, off + SVC.wpPort),
    }
  },
}

// --- endpoint -----------------------------------------------------------------------------------------------

export interface EndpointKey {
  serviceId: number
  prio: number
  backendIndex: number
}
export const endpointKey: Codec<EndpointKey> = {
  cStruct: 'endpoint_key',
  size: 12,
  encode(v, buf, off = 0) {
    checkRange('prio', v.prio, PRIO_COUNT - 1)
    writeU32(buf, off, v.serviceId)
    writeU32(buf, off + 4, v.prio)
    writeU32(buf, off + 8, v.backendIndex)
  },
  decode: (buf, off = 0) => ({
    serviceId: readU32(buf, off),
    prio: readU32(buf, off + 4),
    backendIndex: readU32(buf, off + 8),
  }),
}

export interface EndpointValue {
  backendUid: number
}
export const endpointValue: Codec<EndpointValue> = {
  cStruct: 'endpoint_value',
  size: 4,
  encode: (v, buf, off = 0) => u32Codec('backend_uid').encode(v.backendUid, buf, off),
  decode: (buf, off = 0) => ({ backendUid: readU32(buf, off) }),
}

// --- backend ------------------------------------------------------------------------------------------------

export interface BackendKey {
  backendUid: number
}
export const backendKey: Codec<BackendKey> = {
  cStruct: 'backend_key',
  size: 4,
  encode: (v, buf, off = 0) => u32Codec('backend_uid').encode(v.backendUid, buf, off),
  decode: (buf, off = 0) => ({ backendUid: readU32(buf, off) }),
}

export interface BackendValue {
  address: string
  /** Service ids this backend belongs to (at most MAX_SERVICE_COUNT). */
  services: number[]
  waypoint?: Waypoint | undefined
}
const BE = { addr: 0, serviceCount: 16, service: 20, wpAddr: 60, wpPort: 76 } as const
export const backendValue: Codec<
  BackendValue | { address: IpInput; services: number[]; waypoint?: WaypointInput | undefined }
> &
  Codec<BackendValue> = {
  cStruct: 'backend_value',
  size: 80,
  encode(v, buf, off = 0) {
    if (v.services.length > MAX_SERVICE_COUNT)
      throw new RangeError(`a backend belongs to at most ${MAX_SERVICE_COUNT} services, got ${v.services.length}`)
    encodeIpAddr(v.address, buf, off + BE.addr)
    writeU32(buf, off + BE.serviceCount, v.services.length)
    for (let i = 0; i < MAX_SERVICE_COUNT; i++) writeU32(buf, off + BE.service + 4 * i, v.services[i] ?? 0)
    encodeWaypoint(v.waypoint, buf, off + BE.wpAddr, off + BE.wpPort)
  },
  decode(buf, off = 0) {
    const count = Math.min(readU32(buf, off + BE.serviceCount), MAX_SERVICE_COUNT)
    const services = Array.from({ length: count }, (_, i) => readU32(buf, off + BE.service + 4 * i))
    return {
      address: decodeIpAddr(buf, off + BE.addr),
      services,
      waypoint: decodeWaypoint(buf, off + BE.wpAddr, off + BE.wpPort),
    }
  },
}

// --- manage: netns cookie (connect hooks) or pod IP (sockops) -> managed ----------------------------------------

export type ManagerKey = { netnsCookie: bigint } | { address: string }
export const managerKey: Codec<ManagerKey | { address: IpInput }> & Codec<ManagerKey> = {
  cStruct: 'manager_key',
  size: 16,
  encode(v, buf, off = 0) {
    buf.fill(0, off, off + 16)
    if ('netnsCookie' in v) writeU64(buf, off, v.netnsCookie)
    else encodeIpAddr(v.address, buf, off)
  },
  /**
   * The record does not say which kind it is, and neither can the kernel: a key whose bytes 8..15 are zero
   * reads back as a netns cookie (an IPv4 pod-IP key has that shape too: its address is the cookie's low
   * 4 bytes); anything else is an IPv6 address.
   */
  decode(buf, off = 0) {
    if (buf.subarray(off + 8, off + 16).every((b) => b === 0)) return { netnsCookie: readU64(buf, off) }
    return { address: decodeIpAddr(buf, off) }
  },
}

// --- socket storage: the original destination of a rewritten connect -----------------------------------------

export interface SockStorage {
  connectNs: bigint
  lastReportNs: bigint
  direction: number
  connectSuccess: number
  viaWaypoint: boolean
  hasEncoded: boolean
  hasSetIp: boolean
  /** bpf_sock_tuple bytes (36): only daddr/dport are meaningful here. */
  tuple: Uint8Array
}
export const sockStorage: Codec<SockStorage> = {
  cStruct: 'sock_storage_data',
  size: 64,
  encode(v, buf, off = 0) {
    buf.fill(0, off, off + 64)
    writeU64(buf, off, v.connectNs)
    writeU64(buf, off + 8, v.lastReportNs)
    buf[off + 16] = v.direction
    buf[off + 17] = v.connectSuccess
    buf[off + 18] = v.viaWaypoint ? 1 : 0
    buf[off + 19] = v.hasEncoded ? 1 : 0
    buf[off + 20] = v.hasSetIp ? 1 : 0
    buf.set(v.tuple.subarray(0, 36), off + 24)
  },
  decode: (buf, off = 0) => ({
    connectNs: readU64(buf, off),
    lastReportNs: readU64(buf, off + 8),
    direction: buf[off + 16]!,
    connectSuccess: buf[off + 17]!,
    viaWaypoint: buf[off + 18] !== 0,
    hasEncoded: buf[off + 19] !== 0,
    hasSetIp: buf[off + 20] !== 0,
    tuple: Uint8Array.from(buf.subarray(off + 24, off + 60)),
  }),
}

/** u32 values (km_manage values, tail-call slots). */
export const u32Value: Codec<number> = u32Codec('__u32')

/**
 * Every record codec with the C struct and field offsets it must equal; the BTF test walks this table.
 * Offsets are per C field name.
 */
export const recordLayouts: Record<string, { codec: Codec<never>; fields: Record<string, number> }> = {
  frontend_key: { codec: frontendKey as Codec<never>, fields: { addr: 0 } },
  frontend_value: { codec: frontendValue as Codec<never>, fields: { upstream_id: 0 } },
  service_key: { codec: serviceKey as Codec<never>, fields: { service_id: 0 } },
  service_value: {
    codec: serviceValue as Codec<never>,
    fields: {
      prio_endpoint_count: SVC.count,
      lb_policy: SVC.lbPolicy,
      service_port: SVC.servicePort,
      target_port: SVC.targetPort,
      wp_addr: SVC.wpAddr,
      waypoint_port: SVC.wpPort,
    },
  },
  endpoint_key: { codec: endpointKey as Codec<never>, fields: { service_id: 0, prio: 4, backend_index: 8 } },
  endpoint_value: { codec: endpointValue as Codec<never>, fields: { backend_uid: 0 } },
  backend_key: { codec: backendKey as Codec<never>, fields: { backend_uid: 0 } },
  backend_value: {
    codec: backendValue as Codec<never>,
    fields: {
      addr: BE.addr,
      service_count: BE.serviceCount,
      service: BE.service,
      wp_addr: BE.wpAddr,
      waypoint_port: BE.wpPort,
    },
  },
  manager_key: { codec: managerKey as Codec<never>, fields: { netns_cookie: 0, addr: 0 } },
  sock_storage_data: {
    codec: sockStorage as Codec<never>,
    fields: {
      connect_ns: 0,
      last_report_ns: 8,
      direction: 16,
      connect_success: 17,
      via_waypoint: 18,
      has_encoded: 19,
      has_set_ip: 20,
      sk_tuple: 24,
    },
  },
}
