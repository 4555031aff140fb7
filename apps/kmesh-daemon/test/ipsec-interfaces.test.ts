/**
 * tc interface discovery for IPsec (src/ipsec/interfaces.ts): the node NICs for tc_mark_decrypt (devices carrying
 * the node's addresses, devices of default routes) and the host side of a pod's veth for tc_mark_encrypt, from
 * `ip -j` output shaped as iproute2 6.1 prints it. Pure: nothing is attached anywhere.
 */
import t from 'tap'
import { hostPeersFrom, nodeNicsFrom, type IpLink, type IpRoute } from '../src/ipsec/interfaces.js'

const addr = (family: string, local: string, prefixlen: number) => ({ family, local, prefixlen })
const hostLinks: IpLink[] = [
  { ifindex: 1, ifname: 'lo', link_type: 'loopback', addr_info: [addr('inet', '127.0.0.1', 8)] },
  { ifindex: 2, ifname: 'ens3', link_type: 'ether', addr_info: [addr('inet', '192.168.0.11', 24)] },
  {
    ifindex: 3,
    ifname: 'ens4',
    link_type: 'ether',
    addr_info: [addr('inet', '10.0.0.11', 24), addr('inet6', 'fd00:0:0:1::11', 64)],
  },
  { ifindex: 4, ifname: 'cni0', link_type: 'ether', addr_info: [addr('inet', '10.244.1.1', 24)] },
  // Two pods' veths; their pod-side ends both have ifindex 2 in their own namespaces.
  { ifindex: 7, ifname: 'veth7a', link_index: 2, link_netnsid: 0, linkinfo: { info_kind: 'veth' } },
  { ifindex: 8, ifname: 'veth8b', link_index: 2, link_netnsid: 1, linkinfo: { info_kind: 'veth' } },
  { ifindex: 9, ifname: 'vxlan0', link_index: 3, linkinfo: { info_kind: 'vxlan' } },
]

t.test('node NICs: the devices of the node addresses and of default routes', async (t) => {
  const routes: IpRoute[] = [{ dst: 'default', gateway: '192.168.0.1', dev: 'ens3' }]
  t.same(nodeNicsFrom(hostLinks, routes, ['10.0.0.11']), {
    byAddress: ['ens4'],
    byDefaultRoute: ['ens3'],
    all: ['ens4', 'ens3'],
  })
  t.same(nodeNicsFrom(hostLinks, routes, ['192.168.0.11']).all, ['ens3'], 'once when both name it')
  t.same(
    nodeNicsFrom(hostLinks, [], ['fd00:0:0:1:0:0:0:11']).byAddress,
    ['ens4'],
    'IPv6 node info in another spelling still matches',
  )
  t.same(nodeNicsFrom(hostLinks, [], ['127.0.0.1']).all, [], 'never lo')
  t.same(
    nodeNicsFrom(
      hostLinks,
      [
        { dst: 'default', nexthops: [{ dev: 'ens3' }, { dev: 'ens4' }] },
        { dst: '10.96.0.0/12', dev: 'cni0' },
      ],
      [],
    ).byDefaultRoute,
    ['ens3', 'ens4'],
    'multipath default: every next hop; other routes: none',
  )
})

t.test('pod veths: the host end whose ifindex the pod end names, pointing back', async (t) => {
  const podA: IpLink[] = [
    { ifindex: 1, ifname: 'lo' },
    { ifindex: 2, ifname: 'eth0', link_index: 7, link_netnsid: 0 },
  ]
  const podB: IpLink[] = [{ ifindex: 2, ifname: 'eth0', link_index: 8, link_netnsid: 0 }]
  t.same(hostPeersFrom(podA, hostLinks), ['veth7a'])
  t.same(hostPeersFrom(podB, hostLinks), ['veth8b'], 'same pod ifindex, told apart by the host ifindex')
  t.same(
    hostPeersFrom([{ ifindex: 5, ifname: 'eth0', link_index: 7, link_netnsid: 0 }], hostLinks),
    [],
    'a host link that does not point back at the pod link is a stranger',
  )
  t.same(hostPeersFrom([{ ifindex: 3, ifname: 'eth1', link_index: 9, link_netnsid: 0 }], hostLinks), [], 'not a veth')
  t.same(hostPeersFrom([{ ifindex: 2, ifname: 'eth0' }], hostLinks), [], 'no peer in another namespace')
})
