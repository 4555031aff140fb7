// The §6 fixtures of docs/reference/istio-l4-authz.md: root namespace istio-system, trust domain cluster.local,
// W in namespace app at 10.1.0.10 / fd00:1::10 listening on 8080, and the sources A, A′, B, P, A6.
import type { Authorization } from '@kmesh-ts/xds-client'
import { type Decision, evaluate, type Identity } from '../src/index.js'

export const ROOT = 'istio-system'
export const W_IP4 = '10.1.0.10'
export const W_IP6 = 'fd00:1::10'
export const W_PORT = 8080

export interface Source {
  ip: string
  identity?: Identity
}

const id = (trustDomain: string, namespace: string, serviceAccount: string): Identity => ({
  trustDomain,
  namespace,
  serviceAccount,
})

export const SOURCES: Record<string, Source> = {
  A: { ip: '10.2.0.5', identity: id('cluster.local', 'client', 'sleep') },
  'A′': { ip: '10.2.0.6', identity: id('td2', 'client', 'sleep') },
  B: { ip: '10.3.0.7', identity: id('cluster.local', 'other', 'curl') },
  P: { ip: '192.168.5.5' },
  A6: { ip: '2001:db8:1::5', identity: id('cluster.local', 'client', 'sleep') },
}

export interface Conn {
  /** a key of SOURCES, or a Source */
  from: string | Source
  /** default: W's address of the source's family */
  to?: string
  port?: number
}

export function run(
  policies: Authorization[],
  conn: Conn,
  options: { list?: string[]; rootNamespace?: string | undefined; namespace?: string } = {},
): Decision {
  const source = typeof conn.from === 'string' ? SOURCES[conn.from] : conn.from
  if (source === undefined) throw new Error(`no source ${String(conn.from)}`)
  const to = conn.to ?? (source.ip.includes(':') ? W_IP6 : W_IP4)
  return evaluate({
    policies,
    workload: { uid: 'W', namespace: options.namespace ?? 'app', authorizationPolicies: options.list ?? [] },
    source,
    destination: { ip: to, port: conn.port ?? W_PORT },
    rootNamespace: 'rootNamespace' in options ? options.rootNamespace : ROOT,
  })
}
