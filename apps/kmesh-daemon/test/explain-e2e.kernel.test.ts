/**
 * `kmesh-daemon explain` on a live daemon: its predicted probabilities must hold for real connects. A weighted
 * service (capacities 1, 2, 3, plus an unhealthy and a capacity-0 member) is explained from the pinned maps,
 * then N connects from the managed cgroup are tallied per backend. Each backend's count is tested against
 * Binomial(N, p) with an exact two-sided tail at α = 1e-6 in all (Bonferroni: α/k per backend), so a correct
 * kernel fails this test about once in a million runs. The same bound must reject equal weights, so the test
 * has the power to see capacity weighting. Addresses: VIPs 127.10.8.0/24, backends 127.0.8.0/24.
 */
import t from 'tap'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { meshHarness } from './support/mesh-harness.js'
import { explainLive, runExplain } from '../src/explain/command.js'

const skip = privilegedSkip(
  'BPF_PROG_TYPE_CGROUP_SOCK_ADDR connect4/connect6 attached by BPF links (kernel >= 5.7), a cgroup v2 mount and bpffs',
)
const N = 600
const ALPHA = 1e-6

/** log P(X = x) for X ~ Binomial(n, p). */
function logPmf(n: number, p: number, x: number): number {
  let lc = 0
  for (let i = 1; i <= x; i++) lc += Math.log((n - x + i) / i)
  return lc + x * Math.log(p) + (n - x) * Math.log1p(-p)
}
/** Exact two-sided p-value: the probability of an outcome no more likely than x. */
function binomialPValue(n: number, p: number, x: number): number {
  if (p === 0) return x === 0 ? 1 : 0
  if (p === 1) return x === n ? 1 : 0
  const observed = logPmf(n, p, x)
  let sum = 0
  for (let k = 0; k <= n; k++) {
    const l = logPmf(n, p, k)
    if (l <= observed + 1e-9) sum += Math.exp(l)
  }
  return Math.min(1, sum)
}

function mesh(): string {
  const wl = (name: string, ip: string, extra: string[]): string =>
    [
      `- uid: c//v1/Pod/t/${name}`,
      `  name: ${name}`,
      `  namespace: t`,
      `  node: node-1`,
      `  workloadIps: ["${ip}"]`,
      ...extra,
      `  services: {"t/weighted.t.svc.cluster.local": {80: 18080}}`,
    ].join('\n')
  return [
    'workloads:',
    wl('w1', '127.0.8.11', []),
    wl('w2', '127.0.8.12', ['  capacity: 2']),
    wl('w3', '127.0.8.13', ['  capacity: 3']),
    wl('sick', '127.0.8.14', ['  status: Unhealthy']),
    wl('drained', '127.0.8.15', ['  capacity: 0']),
    'services:',
    '- name: weighted',
    '  namespace: t',
    '  hostname: weighted.t.svc.cluster.local',
    '  vips: ["/127.10.8.1"]',
    '  ports: {80: 18080}',
    'policies: []',
    '',
  ].join('\n')
}

t.test('explain predicts what real connects do', { skip }, async (t) => {
  const h = await meshHarness(t)
  for (const [name, ip] of [
    ['w1', '127.0.8.11'],
    ['w2', '127.0.8.12'],
    ['w3', '127.0.8.13'],
    ['sick', '127.0.8.14'],
    ['drained', '127.0.8.15'],
  ] as const) {
    await h.backend(name, ip, 18080)
  }
  await h.sentinel('127.10.8.1', 80)
  h.writeMesh(mesh())
  await h.start()

  const e = explainLive({ pinRoot: h.pinRoot, host: '127.10.8.1', port: 80 })
  const byAddress = Object.fromEntries(e.outcomes.map((o) => [o.address, o.probability]))
  t.same(
    Object.keys(byAddress).sort(),
    ['127.0.8.11', '127.0.8.12', '127.0.8.13'],
    'the candidates are the three usable backends',
  )
  t.ok(
    Math.abs(byAddress['127.0.8.13']! - 0.5) < 1e-9 && Math.abs(byAddress['127.0.8.11']! - 1 / 6) < 1e-9,
    'capacity 1:2:3 → 1/6, 2/6, 3/6',
  )
  t.equal(e.excluded.length, 2, 'the unhealthy and the capacity-0 members are not candidates, each with a reason')

  let text = ''
  t.equal(
    runExplain(['--pin-root', h.pinRoot, '--state-dir', h.stateDir, '127.10.8.1:80'], {
      write: (s: string) => (text += s),
    }),
    0,
  )
  t.match(text, /127\.10\.8\.1:80 → service t\/weighted\.t\.svc\.cluster\.local \(\d+\), policy Random, endpoints p0=6/)
  t.match(text, /50\.0000%\s+→ 127\.0\.8\.13:18080\s+c\/\/v1\/Pod\/t\/w3 \(\d+\)\s+0\s+3/)
  t.match(text, /not candidates:\n\s+c\/\/v1\/Pod\/t\/(sick|drained)/)
  t.comment(text)

  const name: Record<string, string> = { w1: '127.0.8.11', w2: '127.0.8.12', w3: '127.0.8.13' }
  const seen = (await h.probe(['127.10.8.1:80'], N))['127.10.8.1:80']!
  t.same(
    Object.keys(seen).filter((k) => !(k in name)),
    [],
    `only candidates answer (${JSON.stringify(seen)})`,
  )
  const k = e.outcomes.length
  for (const [who, address] of Object.entries(name)) {
    const p = byAddress[address]!
    const x = seen[who] ?? 0
    const pv = binomialPValue(N, p, x)
    t.ok(
      pv > ALPHA / k,
      `${who}: ${x} of ${N}, predicted ${(p * N).toFixed(1)}; two-sided p-value ${pv.toExponential(2)} > ${ALPHA}/${k}`,
    )
  }
  const rejectsEqual = Object.entries(name).some(([who]) => binomialPValue(N, 1 / 3, seen[who] ?? 0) <= ALPHA / k)
  t.ok(rejectsEqual, 'the same bound rejects equal weights: the test can tell weighted from unweighted')
})
