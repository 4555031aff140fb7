/**
 * The compiler's own promises, without a kernel: limits refuse the whole set with the limit named, workloads with
 * the same policies share one diagram, unknown listed keys are reported, the encoding keeps generations apart.
 */
import t from 'tap'
import { AUTHZ_MAX_NODES } from '@kmesh-ts/kernel-abi'
import type { Authorization, Match } from '@kmesh-ts/xds-client'
import { AuthzCompileError, compileAuthz, encodeGeneration, kernelNodeId } from '../src/index.js'

const none: Match = {
  namespaces: [],
  notNamespaces: [],
  serviceAccounts: [],
  notServiceAccounts: [],
  principals: [],
  notPrincipals: [],
  sourceIps: [],
  notSourceIps: [],
  destinationIps: [],
  notDestinationIps: [],
  destinationPorts: [],
  notDestinationPorts: [],
  extensions: [],
}
const portPolicy = (name: string, port: number, scope: 0 | 1 | 2 = 1): Authorization => ({
  name,
  namespace: 'app',
  scope,
  action: 0,
  dryRun: false,
  extensions: [],
  rules: [{ clauses: [{ matches: [{ ...none, destinationPorts: [port] }] }] }],
})
const slots = () => {
  const m = new Map<string, number>()
  return (k: string) => m.get(k) ?? (m.set(k, m.size + 1).get(k) as number)
}
const wl = (uid: string, ip: string, keys: string[] = []) => ({
  uid,
  namespace: 'app',
  authorizationPolicies: keys,
  addresses: [ip],
})

t.test('limits refuse the whole set and name the limit', async (t) => {
  const policies = Array.from({ length: 5 }, (_, i) => portPolicy(`p${i}`, 8000 + i))
  const base = { policies, identities: [], slotOf: slots() }
  t.throws(
    () => compileAuthz({ ...base, workloads: [wl('w1', '10.0.0.1')], limits: { policiesPerNode: 4 } }),
    { name: 'AuthzCompileError', limit: 'policiesPerNode', needed: 5, allowed: 4 },
    'more policies than counter slots',
  )
  t.throws(
    () => compileAuthz({ ...base, workloads: [wl('c//Pod/app/w1', '10.0.0.1')], limits: { policiesPerWorkload: 3 } }),
    /5 policies apply to workload c\/\/Pod\/app\/w1 \(5 > limit policiesPerWorkload = 3\); the last good set stays in force/,
    'the workload is named',
  )
  t.throws(
    () => compileAuthz({ ...base, workloads: [wl('w1', '10.0.0.1'), wl('w2', '10.0.0.2')], limits: { roots: 1 } }),
    { limit: 'roots' },
  )
  t.throws(() => compileAuthz({ ...base, workloads: [wl('w1', '10.0.0.1')], limits: { edges: 2 } }), /km_authz_port/)
  t.throws(() => compileAuthz({ ...base, workloads: [wl('w1', '10.0.0.1')], limits: { nodes: 2 } }), AuthzCompileError)
})

t.test('workloads with the same policies share one diagram; policies that do not apply add no root', async (t) => {
  const set = compileAuthz({
    policies: [portPolicy('ns-wide', 80), portPolicy('sel', 443, 2)],
    workloads: [
      wl('a', '10.0.0.1'),
      wl('b', '10.0.0.2'),
      wl('c', '10.0.0.3', ['app/sel', 'app/missing']),
      { ...wl('d', '10.0.0.4'), namespace: 'other' },
    ],
    identities: [],
    slotOf: slots(),
  })
  t.equal(set.counts.roots, 3, 'd (namespace other) has no policy')
  t.equal(set.roots[0]?.node, set.roots[1]?.node, 'a and b share their diagram')
  t.not(set.roots[0]?.node, set.roots[2]?.node, 'c has another')
  t.same(Object.fromEntries(set.unknownKeys), { c: ['app/missing'] }, 'an unknown listed key is reported')
})

t.test('generations use disjoint node ids', async (t) => {
  const set = compileAuthz({
    policies: [portPolicy('p', 80)],
    workloads: [wl('a', '10.0.0.1')],
    identities: [],
    slotOf: slots(),
  })
  const g0 = encodeGeneration(set, 0)
  const g1 = encodeGeneration(set, 1)
  t.equal(g0.node.count, set.counts.nodes)
  const firstId = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getUint32(0, true)
  t.equal(firstId(g0.node.keys), 1)
  t.equal(firstId(g1.node.keys), AUTHZ_MAX_NODES + 1)
  t.equal(kernelNodeId(0, 1), 0, 'node 0 stays "no node"')
})

t.test('two protected workloads sharing an address make one root: the later one, as its identity', async (t) => {
  const policies = [portPolicy('a', 80, 2), portPolicy('b', 443, 2)]
  const set = compileAuthz({
    policies,
    workloads: [
      wl('old-pod', '10.0.0.7', ['app/a']),
      wl('other', '10.0.0.8', ['app/a']),
      wl('new-pod', '10.0.0.7', ['app/b']),
    ],
    identities: [],
    slotOf: slots(),
  })
  t.same(
    set.roots.map((r) => [r.address.join('.'), r.workload]),
    [
      ['10.0.0.7', 'new-pod'],
      ['10.0.0.8', 'other'],
    ],
    'one root per address (a batch write and a batch delete of the same key twice would fail)',
  )
  t.equal(set.counts.roots, 2)
  const packed = encodeGeneration(set, 0)
  t.equal(packed.root.count, 2, 'two root records')
})
