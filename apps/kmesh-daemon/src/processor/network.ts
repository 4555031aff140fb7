/**
 * The node's network decides what it serves (issue 11, item 6). ztunnel looks services and workloads up by
 * (network, address) with its own `NETWORK`, and reaches an endpoint on another network only through that
 * endpoint's network gateway, with double HBONE (an mTLS HTTP/2 CONNECT to the gateway's HBONE port, carrying
 * another one to the service hostname). Our rules (apps/kmesh-daemon/README.md, "Networks"):
 * - a service VIP or workload address is a frontend when it is on the node's network or on no network (`''`, a
 *   mesh written without networks works on every node); on an address claimed on both, the node's own wins;
 * - an endpoint on another network is never a backend: with a network gateway ztunnel would tunnel to the
 *   gateway, which a connect() rewrite cannot do (the gateway accepts only HBONE, and the kernel hook can only
 *   change the destination of a plain TCP connect); without one ztunnel fails the connection. Either way it is
 *   reported, naming the workload, its network and its gateway.
 */
import type { GatewayAddress, Service, Workload } from '../model/index.js'

/** A resource on `network` is served on a node on `nodeNetwork`: the same network, or no network at all. */
export function onNodeNetwork(network: string, nodeNetwork: string): boolean {
  return network === nodeNetwork || network === ''
}

/** 0 for the node's own network, 1 for no network (used on the node's network too, but second), else undefined. */
export function networkRank(network: string, nodeNetwork: string): 0 | 1 | undefined {
  if (network === nodeNetwork) return 0
  return network === '' ? 1 : undefined
}

/** How well a service's claim on `ip` fits this node (see networkRank); undefined when it has no such VIP here. */
export function vipRank(s: Service, ip: string, nodeNetwork: string): 0 | 1 | undefined {
  let best: 0 | 1 | undefined
  for (const v of s.vips) {
    if (v.ip !== ip) continue
    const r = networkRank(v.network, nodeNetwork)
    if (r !== undefined && (best === undefined || r < best)) best = r
  }
  return best
}

/** Why an endpoint on another network is not a backend here (one line for the log and the dump). */
export function remoteEndpointReason(service: string, w: Workload, nodeNetwork: string): string {
  const where = `endpoint ${w.uid} of service ${service} is on network "${w.network}", this node on "${nodeNetwork}"`
  const gw = w.networkGateway
  return gw
    ? `${where}: ztunnel reaches it through its network gateway ${gatewayText(gw)} with double HBONE, which a connect() rewrite cannot do; not used`
    : `${where} and it has no network gateway; not used`
}

function gatewayText(gw: GatewayAddress): string {
  const d = gw.destination
  const target = d.kind === 'address' ? `${d.network}/${d.ip}` : `${d.namespace}/${d.hostname}`
  return `${target} (HBONE port ${gw.hboneMtlsPort})`
}
