/**
 * Which devices the IPsec tc programs go on, found instead of configured (issue 16; Kmesh: ipsec_controller.go
 * handleTc and manage_controller.go linkTc, docs/reference/kmesh-dataplane.md §1.1):
 *  - tc_mark_decrypt on the node's NICs: every device that carries one of this node's IPsec addresses (Kmesh's rule)
 *    and every device of a default route (where traffic from other nodes arrives when the addresses are elsewhere,
 *    e.g. on a bond's slave or a VLAN);
 *  - tc_mark_encrypt on the host side of each enrolled pod's veth: the peer of the pod's interface, found from the
 *    pod side (`link_index`, iproute2's IFLA_LINK = the peer's ifindex in its namespace), checked both ways.
 * The pure functions work on `ip -j` output; the two runners ask iproute2 inside the namespaces (nsenter, never
 * `ip netns exec`, which remounts /sys).
 */
import { execFileSync } from 'node:child_process'

/** The parts of `ip -j [-d] link|addr show` entries used here. */
export interface IpLink {
  ifindex: number
  ifname: string
  /** IFLA_LINK: for a veth, the peer's ifindex (in the namespace `link_netnsid` names when present). */
  link_index?: number
  link_netnsid?: number
  link_type?: string
  flags?: string[]
  linkinfo?: { info_kind?: string }
  addr_info?: { family: string; local: string; prefixlen: number }[]
}

/** The parts of `ip -j route show default` entries used here. */
export interface IpRoute {
  dst: string
  dev?: string
  gateway?: string
  nexthops?: { dev?: string }[]
}

export interface NodeNics {
  /** Devices carrying one of the node's IPsec addresses. */
  byAddress: string[]
  /** Devices of default routes (v4 and v6, multipath included). */
  byDefaultRoute: string[]
  /** Both, once each, in that order: where tc_mark_decrypt goes. */
  all: string[]
}

/** The node NICs for tc_mark_decrypt, from `ip -j addr show` and `ip -j route show default` (+ `-6`). */
export function nodeNicsFrom(links: IpLink[], routes: IpRoute[], nodeAddresses: string[]): NodeNics {
  const wanted = new Set(nodeAddresses.map(normalise))
  const byAddress = links
    .filter((l) => l.ifname !== 'lo' && (l.addr_info ?? []).some((a) => wanted.has(normalise(a.local))))
    .map((l) => l.ifname)
  const byDefaultRoute = [
    ...new Set(
      routes
        .filter((r) => r.dst === 'default')
        .flatMap((r) => [r.dev, ...(r.nexthops ?? []).map((h) => h.dev)])
        .filter((d): d is string => typeof d === 'string' && d !== 'lo'),
    ),
  ]
  return { byAddress, byDefaultRoute, all: [...new Set([...byAddress, ...byDefaultRoute])] }
}

/**
 * The host-side veths of a pod: for each pod interface with a peer in another namespace, the host link whose ifindex
 * is the pod link's `link_index`, that is a veth, and whose own `link_index` points back at the pod link. (Ifindexes
 * repeat across namespaces, so one direction alone could name a stranger.)
 */
export function hostPeersFrom(podLinks: IpLink[], hostLinks: IpLink[]): string[] {
  const byIndex = new Map(hostLinks.map((l) => [l.ifindex, l]))
  const out: string[] = []
  for (const p of podLinks) {
    if (p.link_index === undefined || p.link_netnsid === undefined || p.ifname === 'lo') continue
    const h = byIndex.get(p.link_index)
    if (!h || h.link_index !== p.ifindex) continue
    if (h.linkinfo?.info_kind !== undefined && h.linkinfo.info_kind !== 'veth') continue
    out.push(h.ifname)
  }
  return [...new Set(out)]
}

export class InterfaceDiscoveryError extends Error {
  constructor(
    readonly netns: string | undefined,
    message: string,
  ) {
    super(`ipsec interface discovery${netns ? ` in ${netns}` : ''}: ${message}`)
    this.name = 'InterfaceDiscoveryError'
  }
}

/** Runs `ip -j ARGS` in `netns` (or here) and parses the JSON array it prints. */
function ipJson<T>(netns: string | undefined, args: string[]): T[] {
  const argv = netns ? ['nsenter', `--net=${netns}`, 'ip', '-j', ...args] : ['ip', '-j', ...args]
  let text: string
  try {
    text = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? (err as Error).message).trim()
    throw new InterfaceDiscoveryError(netns, `${argv.join(' ')} failed: ${stderr}`)
  }
  try {
    return text.trim() ? (JSON.parse(text) as T[]) : []
  } catch {
    throw new InterfaceDiscoveryError(netns, `${argv.join(' ')} printed no JSON array`)
  }
}

/** The node NICs in `netns` (the namespace of the XFRM rules; the daemon's own when undefined). */
export function discoverNodeNics(netns: string | undefined, nodeAddresses: string[]): NodeNics {
  const links = ipJson<IpLink>(netns, ['addr', 'show'])
  const routes = [
    ...ipJson<IpRoute>(netns, ['-4', 'route', 'show', 'default']),
    ...ipJson<IpRoute>(netns, ['-6', 'route', 'show', 'default']),
  ]
  return nodeNicsFrom(links, routes, nodeAddresses)
}

/** The host-side veths (in `netns`) of the pod whose network namespace is `podNetns` (a path such as /proc/PID/ns/net). */
export function discoverPodVeths(netns: string | undefined, podNetns: string): string[] {
  return hostPeersFrom(ipJson<IpLink>(podNetns, ['link', 'show']), ipJson<IpLink>(netns, ['-d', 'link', 'show']))
}

/** IPv6 text in one spelling (iproute2 prints RFC 5952; node info may not); IPv4 as is. */
function normalise(ip: string): string {
  if (!ip.includes(':')) return ip
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1)
  } catch {
    return ip
  }
}
