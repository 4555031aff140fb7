/**
 * bench/authz: what the XDP authorization program costs per packet as policies grow (issue 12 item 5), measured
 * with BPF_PROG_TEST_RUN's repeat timing (the kernel runs the program `repeat` times on the frame and averages).
 * The baseline is xdp_pass — an XDP program that only passes the packet — timed in the same round, right beside.
 *
 * For each node size N (policies stored on the node: 1, 64, 1,024, 65,536) and each workload size W (policies
 * applying to the workload under test: 1 and 1,024, W ≤ N), the set is compiled and installed, then per round:
 *   pass     xdp_pass on the SYN                              (the baseline)
 *   syn      xdp_authz on an allowed SYN that walks the whole diagram (port, source prefix, identity, leaf)
 *   other    xdp_authz on a SYN to an address without policies (one lookup, then pass)
 *   ack      xdp_authz on a non-SYN segment of an established connection (parsed, passed)
 * Medians over rounds; "verdict" = syn − pass. Targets: syn(W=1,024) ≤ 2 × syn(W=1); verdict ≤ 200 ns.
 * Also printed: compile and install time of each set, and the diagram's size.
 * Policies: each has one rule with one Match: a source /24 (random in 10.0.0.0/8), a port (one of 100) and a
 * principal (one of 50 service accounts) — every property the program tests. Other workloads hold the rest.
 */
import { positiveIntOptions } from '../lib/options.mjs'
import { cpus, loadavg, release } from 'node:os'
import { existsSync } from 'node:fs'

const ROOT = new URL('../../', import.meta.url)
const DIST = {
  maps: new URL('packages/bpf-maps/dist/index.js', ROOT),
  progs: new URL('packages/bpf-progs/dist/index.js', ROOT),
  compiler: new URL('packages/authz-compiler/dist/index.js', ROOT),
  kernel: new URL('packages/authz-compiler/dist/kernel.js', ROOT),
  frames: new URL('packages/authz-compiler/dist/frames.js', ROOT),
}

const OPTIONS = {
  rounds: { env: 'KMESH_BENCH_ROUNDS', default: 7, help: 'rounds per set (medians over rounds)' },
  repeat: { env: 'KMESH_BENCH_REPEAT', default: 200000, help: 'BPF_PROG_TEST_RUN repetitions per measurement' },
}

const options = () => positiveIntOptions('node bench/authz/run.mjs [options]   (root; after `pnpm build`)', OPTIONS)

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

// A deterministic PRNG, so every run benchmarks the same sets.
let seed = 42
const random = () => {
  seed = (seed * 1103515245 + 12345) >>> 0
  return seed / 4294967296
}
const int = (n) => Math.floor(random() * n)

const EMPTY = {
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
const TARGET = { uid: 'bench//Pod/app/target', namespace: 'app', address: '10.200.0.1' }
const CLIENT = { address: '10.77.1.9', sa: 'sa-7' } // matched by policy 0: walks port, prefix and identity

function policy({ name, sourceNet, port, sa }) {
  return {
    name,
    namespace: 'app',
    scope: 2, // WORKLOAD_SELECTOR: applies where listed
    action: 0, // ALLOW
    dryRun: false,
    extensions: [],
    rules: [
      {
        clauses: [
          {
            matches: [
              {
                ...EMPTY,
                sourceIps: [{ address: Uint8Array.from(sourceNet), length: 24 }],
                destinationPorts: [port],
                principals: [{ exact: `cluster.local/ns/app/sa/${sa}` }],
              },
            ],
          },
        ],
      },
    ],
  }
}

/** N policies on the node, W of them listed by the target workload; the others on workloads of 64 each. */
function buildSet(n, w) {
  const policies = []
  const workloads = [{ uid: TARGET.uid, namespace: 'app', authorizationPolicies: [], addresses: [TARGET.address] }]
  for (let i = 0; i < n; i++) {
    const p =
      i === 0
        ? policy({ name: 'p0', sourceNet: [10, 77, 1, 0], port: 8080, sa: CLIENT.sa })
        : policy({
            name: `p${i}`,
            sourceNet: [10, int(256), int(256), 0],
            port: 8000 + int(100),
            sa: `sa-${int(50)}`,
          })
    policies.push(p)
    const key = `app/${p.name}`
    if (i < w) workloads[0].authorizationPolicies.push(key)
    else {
      const k = Math.floor((i - w) / 64)
      if (!workloads[k + 1]) {
        workloads[k + 1] = {
          uid: `bench//Pod/app/other-${k}`,
          namespace: 'app',
          authorizationPolicies: [],
          addresses: [`10.201.${(k >> 8) & 255}.${k & 255}`],
        }
      }
      workloads[k + 1].authorizationPolicies.push(key)
    }
  }
  const identities = [
    {
      address: CLIENT.address,
      identity: { trustDomain: 'cluster.local', namespace: 'app', serviceAccount: CLIENT.sa },
    },
  ]
  for (let i = 0; i < 2000; i++) {
    identities.push({
      address: `10.${int(256)}.${int(256)}.${1 + int(250)}`,
      identity: { trustDomain: 'cluster.local', namespace: 'app', serviceAccount: `sa-${int(50)}` },
    })
  }
  return { policies, workloads, identities }
}

async function main() {
  const opts = options()
  if (process.getuid?.() !== 0) throw new Error('the benchmark loads BPF programs (CAP_BPF): run it as root')
  for (const url of Object.values(DIST))
    if (!existsSync(url)) throw new Error(`${url.pathname} is missing: run \`pnpm build\` first`)
  const { Collection } = await import(DIST.maps)
  const { objectPath, programs } = await import(DIST.progs)
  const { compileAuthz } = await import(DIST.compiler)
  const { AuthzMaps } = await import(DIST.kernel)
  const { tcpFrame, TCP, LINUX_SYN_OPTIONS } = await import(DIST.frames)

  console.log(
    `bench/authz  kernel ${release()}, ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}; ` + `${opts.rounds} rounds × ${opts.repeat} repetitions`,
  )
  const coll = Collection.load({ objectPath: objectPath('xdp_authz'), pinMaps: false })
  try {
    const maps = AuthzMaps.fromCollection(coll)
    const authz = coll.program(programs.xdpAuthz.name)
    const pass = coll.program(programs.xdpPass.name)
    const frame = (dst, flags) =>
      Buffer.from(
        tcpFrame({ src: CLIENT.address, dst, srcPort: 45678, dstPort: 8080, flags, tcpOptions: LINUX_SYN_OPTIONS }),
      )
    const syn = frame(TARGET.address, TCP.SYN)
    const otherSyn = frame('10.250.0.1', TCP.SYN)
    const ack = frame(TARGET.address, TCP.ACK)
    const time = (prog, data) => {
      const r = prog.testRun({ dataIn: data, dataOutSize: data.length + 64, repeat: opts.repeat })
      return { ns: r.durationNs, retval: r.retval }
    }

    const rows = []
    for (const [n, w] of [
      [1, 1],
      [64, 1],
      [64, 64],
      [1024, 1],
      [1024, 1024],
      [65536, 1],
      [65536, 1024],
    ]) {
      const input = buildSet(n, w)
      const slots = new Map()
      const t0 = performance.now()
      const set = compileAuthz({ ...input, slotOf: (k) => slots.get(k) ?? slots.set(k, slots.size + 1).get(k) })
      const compileMs = performance.now() - t0
      const installed = maps.install(set)
      const check = time(authz, syn)
      if (check.retval !== 2)
        throw new Error(`N=${n} W=${w}: the benchmark SYN must be allowed (XDP_PASS), got ${check.retval}`)
      const samples = { pass: [], syn: [], other: [], ack: [], verdict: [] }
      for (let r = 0; r < opts.rounds; r++) {
        const p = time(pass, syn).ns
        const s = time(authz, syn).ns
        samples.pass.push(p)
        samples.syn.push(s)
        samples.verdict.push(s - p)
        samples.other.push(time(authz, otherSyn).ns)
        samples.ack.push(time(authz, ack).ns)
      }
      const row = { n, w, compileMs, installMs: installed.ms, records: installed.records, nodes: set.counts.nodes }
      for (const [k, v] of Object.entries(samples)) row[k] = median(v)
      rows.push(row)
      console.log(
        `  N=${String(n).padStart(5)} W=${String(w).padStart(4)}  pass ${row.pass.toFixed(0).padStart(4)} ns  syn ${row.syn
          .toFixed(0)
          .padStart(
            4,
          )} ns  verdict ${row.verdict.toFixed(0).padStart(4)} ns  other ${row.other.toFixed(0).padStart(4)} ns  ack ${row.ack
          .toFixed(0)
          .padStart(
            4,
          )} ns   compile ${compileMs.toFixed(0)} ms, install ${installed.ms.toFixed(0)} ms (${installed.records} records, ${set.counts.nodes} nodes)`,
      )
    }
    const at = (n, w) => rows.find((r) => r.n === n && r.w === w)
    console.log('\nratios (each against a baseline measured in the same run):')
    const r1024 = at(1024, 1024).syn / at(1024, 1).syn
    const r65536 = at(65536, 1024).syn / at(1, 1).syn
    const worstVerdict = Math.max(...rows.map((r) => r.verdict))
    console.log(
      `  syn, W=1,024 / W=1 (N=1,024)          ${r1024.toFixed(2)} ×   target ≤ 2 ×   ${r1024 <= 2 ? 'met' : 'MISSED'}`,
    )
    console.log(`  syn, N=65,536 W=1,024 / N=1 W=1       ${r65536.toFixed(2)} ×`)
    console.log(`  syn / pass-only, worst set            ${Math.max(...rows.map((r) => r.syn / r.pass)).toFixed(2)} ×`)
    console.log(
      `  verdict (syn − pass), worst set       ${worstVerdict.toFixed(0)} ns   target ≤ 200 ns   ${worstVerdict <= 200 ? 'met' : 'MISSED'}`,
    )
    console.log(`  non-SYN (ack) / pass-only, worst      ${Math.max(...rows.map((r) => r.ack / r.pass)).toFixed(2)} ×`)
  } finally {
    coll.close()
  }
}

main().catch((err) => {
  console.error(`bench/authz: ${err.stack ?? err}`)
  process.exit(1)
})
