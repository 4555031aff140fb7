/**
 * The one check of "does this resource fit the kernel records", for both sources: the mesh file refuses the
 * entry (file, line, key), cluster mode NACKs the resource. The limits are the C headers' (@kmesh-ts/kernel-abi,
 * generated from them); the messages are written once, here.
 */
import { MAX_PORT_COUNT, MAX_SERVICE_COUNT } from '@kmesh-ts/kernel-abi'

export const KERNEL_LIMITS = {
  /** `service_port[]` / `target_port[]` of the service record */
  portsPerService: MAX_PORT_COUNT,
  /** `service[]` of the backend record */
  servicesPerWorkload: MAX_SERVICE_COUNT,
} as const

/** Why a service with `ports` port mappings does not fit, or undefined. */
export function servicePortsProblem(ports: number): string | undefined {
  if (ports <= MAX_PORT_COUNT) return undefined
  return (
    `${ports} ports, but the kernel service record holds at most ${MAX_PORT_COUNT} ` +
    '(kmesh-ts data path limit, docs/reference/kmesh-dataplane.md MAX_PORT_COUNT)'
  )
}

/** Why a workload that is an endpoint of `services` services does not fit, or undefined. */
export function workloadServicesProblem(services: number): string | undefined {
  if (services <= MAX_SERVICE_COUNT) return undefined
  return (
    `the workload belongs to ${services} services, but the kernel backend record holds at most ${MAX_SERVICE_COUNT} ` +
    '(kmesh-ts data path limit, docs/reference/kmesh-dataplane.md MAX_SERVICE_COUNT)'
  )
}
