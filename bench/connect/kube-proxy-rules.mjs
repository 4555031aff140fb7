/**
 * An iptables-restore text for the nat table shaped the way kube-proxy's iptables mode writes it: OUTPUT and
 * PREROUTING jump to KUBE-SERVICES, one `-d ClusterIP --dport` rule per service port jumping to a KUBE-SVC-*
 * chain, which marks off-cluster sources for masquerade and picks a KUBE-SEP-* chain with `statistic --mode
 * random` (probability 1/n, 1/(n-1), … so the choice is uniform), each KUBE-SEP-* DNATing to its endpoint;
 * KUBE-SERVICES ends with the KUBE-NODEPORTS rule, and KUBE-POSTROUTING masquerades marked packets.
 * Chain names are a hash of the service port (kube-proxy uses base32 of sha256; any stable hash behaves the same).
 *
 * The measured service sits in the middle of KUBE-SERVICES: kube-proxy writes services in Go map order,
 * so a given service is on average half-way down the chain, and every new connection walks it linearly.
 */
import { createHash } from 'node:crypto'

export const CLUSTER_CIDR = '10.244.0.0/16'
/** The measured service's one endpoint (like the kmesh target); filler services have two, picked by `statistic`. */
export const NETNS_BACKENDS = ['10.244.0.1']

const chainHash = (prefix, text) =>
  `${prefix}-${createHash('sha256').update(text).digest('hex').slice(0, 16).toUpperCase()}`
const clusterIp = (i) => `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`
/** Filler endpoints: pod IPs nobody answers on (they are never reached: only the target is connected to). */
const fillerPod = (i, k) => `10.245.${((i * 2 + k) >> 8) & 255}.${(i * 2 + k) & 255}`

/**
 * @param {number} services how many services (the target has 1 endpoint, every other 2)
 * @param {number} port the target port of every endpoint
 * @returns {{ rules: string, targetVip: string }}
 */
export function kubeProxyRules(services, port) {
  const target = Math.floor(services / 2)
  const head = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':KUBE-SERVICES - [0:0]',
    ':KUBE-NODEPORTS - [0:0]',
    ':KUBE-POSTROUTING - [0:0]',
    ':KUBE-MARK-MASQ - [0:0]',
  ]
  const chains = []
  const rules = [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
  ]
  for (let i = 0; i < services; i++) {
    const name = i === target ? 'bench/target:http' : `bench/filler-${i}:http`
    const vip = clusterIp(i)
    const pods = i === target ? NETNS_BACKENDS : [fillerPod(i, 0), fillerPod(i, 1)]
    const svc = chainHash('KUBE-SVC', `${name}/tcp`)
    chains.push(`:${svc} - [0:0]`)
    rules.push(
      `-A KUBE-SERVICES -d ${vip}/32 -p tcp -m comment --comment "${name} cluster IP" -m tcp --dport 80 -j ${svc}`,
    )
    rules.push(
      `-A ${svc} ! -s ${CLUSTER_CIDR} -d ${vip}/32 -p tcp -m comment --comment "${name} cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`,
    )
    pods.forEach((pod, k) => {
      const sep = chainHash('KUBE-SEP', `${name}/tcp/${pod}:${port}`)
      chains.push(`:${sep} - [0:0]`)
      const left = pods.length - k
      const pick = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(10)}` : ''
      rules.push(`-A ${svc} -m comment --comment "${name} -> ${pod}:${port}"${pick} -j ${sep}`)
      rules.push(`-A ${sep} -s ${pod}/32 -m comment --comment "${name}" -j KUBE-MARK-MASQ`)
      rules.push(`-A ${sep} -p tcp -m comment --comment "${name}" -m tcp -j DNAT --to-destination ${pod}:${port}`)
    })
  }
  rules.push(
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
  )
  return { rules: [...head, ...chains, ...rules, 'COMMIT', ''].join('\n'), targetVip: clusterIp(target) }
}
