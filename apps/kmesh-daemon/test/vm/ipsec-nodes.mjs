// Guest side of test/ipsec-nodes.vm.test.ts: runs as root inside the test VM (tools/vm, Debian 6.1 kernel with ESP/GCM).
// IPsec beyond two nodes (issue 16): for each cluster size given (argv[2], default "3,5"), N network namespaces are N
// nodes on one bridge, each with one pod namespace behind a veth and its own IpsecController (XFRM, km_ipsec_peer,
// km_nodeinfo and tc inside the node's namespace; all controllers share this process, a node-info directory and a key
// file). Every ordered pair of pods exchanges a line over TCP through an echo server; the per-state counters show that
// every pair used its own SAs. Three nodes: key rotation under a flowing connection, plaintext from a remote pod
// refused, a node rebooting (new boot id -> re-derived keys). Five nodes: a node leaving. Prints step lines and ends
// with `RESULT <json>`; exits non-zero if a check failed.
//
// Speed (TCG): few processes. Topology is one `ip -batch` per namespace, the pods' echo servers are busybox nc (one
// per pod, `-ll -e cat`), a traffic round is one shell with one nsenter + nc per connection, counters come from our
// own netlink dumps and /proc/<pid>/net/xfrm_stat of a process parked in each node namespace.
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

if (process.env.KMESH_IN_VM !== '1') {
  process.stderr.write(
    'ipsec-nodes.mjs builds bridges and namespaces: run it in the test VM (node tools/vm/run.mjs FILE)\n',
  )
  process.exit(2)
}
const warmUp = new Promise((resolve) =>
  spawn(
    'modprobe',
    ['-a', 'esp4', 'xfrm_user', 'gcm', 'ghash_generic', 'ctr', 'seqiv', 'cls_bpf', 'sch_ingress', 'act_gact', 'bridge'],
    { stdio: 'ignore' },
  )
    .on('exit', resolve)
    .on('error', resolve),
)
const { XfrmClient } = await import('@kmesh-ts/ipsec')
const { IpsecController, DirNodeInfoSource } = await import('../../dist/ipsec/index.js')
const t0 = Date.now()
const timings = { nodeAndImportsMs: Math.round(process.uptime() * 1000) }
const say = (msg) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`)
const sh = (cmd) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' })
const failures = []
const check = (ok, what) => {
  say(`${ok ? 'ok' : 'NOT OK'} - ${what}`)
  if (!ok) failures.push(what)
  return ok
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const waitFor = async (what, pred, ms = 60000) => {
  const end = Date.now() + ms
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}
const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 }
const logger = (level, bindings = {}) => {
  const at = (name) => (obj, msg) => {
    if (LEVELS[name] < (LEVELS[level] ?? 30)) return
    process.stderr.write(
      `${JSON.stringify({ level: name, ...bindings, ...(typeof obj === 'string' ? { msg: obj } : { ...obj, msg }) })}\n`,
    )
  }
  return {
    level,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (b) => logger(level, { ...bindings, ...b }),
  }
}
const log = logger(process.env.IPSEC_VM_LOG_LEVEL ?? 'warn')
const redact = (text) => text.replace(/(aead \S+) 0x[0-9a-f]+/g, '$1 [key redacted]')
const keyHash = (buf) => createHash('sha256').update(buf).digest('hex').slice(0, 12)

writeFileSync('/proc/sys/net/core/devconf_inherit_init_net', '1')
writeFileSync('/proc/sys/net/ipv4/ip_forward', '1')
await warmUp
timings.warmUpMs = Date.now() - t0

const results = {}
for (const n of (process.argv[2] ?? '3,5').split(',').map(Number)) {
  const since = Date.now()
  results[n] = await cluster(n)
  results[n].seconds = (Date.now() - since) / 1000
}
process.stdout.write(`RESULT ${JSON.stringify({ failures, results, timings, seconds: (Date.now() - t0) / 1000 })}\n`)
process.exit(failures.length ? 1 : 0)

async function cluster(n) {
  say(`=== ${n} nodes ===`)
  const out = { timings: {} }
  const lap = (name, since) => {
    out.timings[name] = Date.now() - since
  }
  let since = Date.now()
  const ids = Array.from({ length: n }, (_, k) => k + 1)
  const nodeNs = (i) => `ipsec${n}n${i}`
  const podNs = (i) => `ipsec${n}p${i}`
  const nodeAddr = (i) => `192.168.77.${i}`
  const podAddr = (i) => `10.244.${i}.10`
  const work = mkdtempSync(join(tmpdir(), `kmesh-ipsec-${n}-`))
  const bridge = `ipsecbr${n}`
  const batches = { root: [`link add ${bridge} type bridge`, `link set ${bridge} up`] }
  for (const i of ids) {
    batches.root.push(
      `netns add ${nodeNs(i)}`,
      `netns add ${podNs(i)}`,
      `link add b${n}x${i} type veth peer name eth0 netns ${nodeNs(i)}`,
      `link set b${n}x${i} master ${bridge}`,
      `link set b${n}x${i} up`,
      `link add eth0 netns ${podNs(i)} type veth peer name vp netns ${nodeNs(i)}`,
    )
    batches[nodeNs(i)] = [
      'link set lo up',
      `addr add ${nodeAddr(i)}/24 dev eth0`,
      'link set eth0 up',
      `addr add 10.244.${i}.1/24 dev vp`,
      'link set vp up',
      ...ids.filter((j) => j !== i).map((j) => `route add 10.244.${j}.0/24 via ${nodeAddr(j)}`),
    ]
    batches[podNs(i)] = [
      'link set lo up',
      `addr add ${podAddr(i)}/24 dev eth0`,
      'link set eth0 up',
      `route add default via 10.244.${i}.1`,
    ]
  }
  for (const [ns, lines] of Object.entries(batches)) {
    const file = join(work, `${ns}.ip`)
    writeFileSync(file, `${lines.join('\n')}\n`)
    execFileSync('ip', [...(ns === 'root' ? [] : ['-n', ns]), '-batch', file], {
      stdio: ['ignore', 'ignore', 'inherit'],
    })
  }
  lap('topologyMs', since)
  say(`${n} nodes on bridge ${bridge}, one pod each`)

  const spawnIn = (ns, argv, stdin = 'ignore') =>
    spawn('nsenter', [`--net=/run/netns/${ns}`, ...argv], { stdio: [stdin, 'pipe', 'inherit'] })
  const children = []
  // One echo server per pod (busybox nc: -ll keeps listening, -e runs cat per connection).
  const servers = ids.map((i) => {
    const c = spawnIn(podNs(i), ['busybox', 'nc', '-ll', '-p', '8000', '-e', '/bin/cat'])
    children.push(c)
    return c
  })
  const parked = Object.fromEntries(
    ids.map((i) => {
      const c = spawn('nsenter', [`--net=/run/netns/${nodeNs(i)}`, 'sleep', '3600'], { stdio: 'ignore' })
      children.push(c)
      return [i, c]
    }),
  )
  const xfrmStat = (i) =>
    Object.fromEntries(
      readFileSync(`/proc/${parked[i].pid}/net/xfrm_stat`, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(/\s+/))
        .map(([k, v]) => [k, Number(v)]),
    )
  const listening = (pid) =>
    /^\s*\d+: [0-9A-F]+:1F40 [0-9A-F]+:[0-9A-F]{4} 0A /m.test(
      ['tcp', 'tcp6'].map((f) => readFileSync(`/proc/${pid}/net/${f}`, 'utf8')).join('\n'),
    )

  // --- keys, controllers ---------------------------------------------------------------------------------------
  since = Date.now()
  const keyFile = join(work, 'keys', 'ipsec.json')
  const nodeInfoDir = join(work, 'nodeinfo')
  mkdirSync(join(work, 'keys'))
  mkdirSync(nodeInfoDir)
  const writeKey = (spi, byte) => {
    const tmp = `${keyFile}.tmp`
    const aeadKey = Buffer.alloc(36, byte).toString('base64')
    writeFileSync(tmp, JSON.stringify({ spi, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey, length: 128 }), { mode: 0o600 })
    renameSync(tmp, keyFile)
  }
  writeKey(1, 0x11)
  const bootOf = (i, gen = 1) => `${String(gen).repeat(8)}-${String(i).repeat(4)}-4111-8111-${'a'.repeat(12)}`
  // Node 3 of three reboots (its node info must stay published across the restart); every other node withdraws its
  // node info when its controller closes, as a node leaving does.
  const startNode = (i, { bootID = bootOf(i), withdraw = !(n === 3 && i === 3) } = {}) => {
    // Devices are discovered, not configured: tc_mark_decrypt on the NIC carrying the node's address (eth0),
    // tc_mark_encrypt on the host end of the pod's veth (vp), found from the pod's namespace.
    const c = IpsecController.start({
      keyFile,
      nodeInfoSource: new DirNodeInfoSource({
        dir: nodeInfoDir,
        nodeName: `node-${i}`,
        withdrawOnClose: withdraw,
        log: log.child({ node: `node-${i}` }),
      }),
      resyncMs: 1000,
      debounceMs: 30,
      log: log.child({ node: `node-${i}` }),
      netns: `/run/netns/${nodeNs(i)}`,
      pinRoot: `/sys/fs/bpf/kmesh-vm-${n}-${i}`,
      discoverNics: true,
      node: { name: `node-${i}`, addresses: [nodeAddr(i)], podCIDRs: [`10.244.${i}.0/24`], bootID },
    })
    c.attachPod(`/run/netns/${podNs(i)}`)
    return c
  }
  const ctl = {}
  for (const i of ids) ctl[i] = startNode(i)
  const xfrm = Object.fromEntries(ids.map((i) => [i, XfrmClient.open({ netns: `/run/netns/${nodeNs(i)}` })]))
  const converged = (members, spi = 1) =>
    members.every((i) => {
      const states = [...ctl[i].installed.states.values()]
      return (
        states.length === 2 * (members.length - 1) &&
        states.every((s) => s.spi === spi) &&
        (ctl[i].installed.peers?.size ?? 0) === members.length - 1
      )
    })
  const tcOf = (i) =>
    ctl[i].tcAttachments
      .map((a) => `${a.dev}:${a.pin.endsWith('tc_mark_encrypt') ? 'encrypt' : 'decrypt'}`)
      .sort()
      .join(' ')
  check(
    ids.every((i) => tcOf(i) === 'eth0:decrypt vp:encrypt'),
    `tc devices discovered on every node: ${tcOf(1)} (the NIC of the node address; the pod's veth from its namespace)`,
  )
  await waitFor(`${n} controllers to converge`, () => converged(ids), 60000)
  lap('controllersMs', since)
  say(`${n} controllers converged`)

  const states = (i) => xfrm[i].dumpStates()
  const counters = (members) =>
    Object.fromEntries(
      members.map((i) => [
        i,
        states(i).map((s) => ({
          dir: s.dst === nodeAddr(i) ? 'in' : 'out',
          peer: s.dst === nodeAddr(i) ? s.src : s.dst,
          spi: s.spi,
          mark: s.mark ? `0x${s.mark.value.toString(16)}/0x${s.mark.mask.toString(16)}` : '',
          packets: Number(s.current.packets),
          bytes: Number(s.current.bytes),
          key: keyHash(s.aead.key),
        })),
      ]),
    )
  const errorStats = [
    'XfrmInNoStates',
    'XfrmInStateProtoError',
    'XfrmInTmplMismatch',
    'XfrmInNoPols',
    'XfrmInStateMismatch',
  ]
  const errors = (members) =>
    Object.fromEntries(members.map((i) => [i, Object.fromEntries(errorStats.map((k) => [k, xfrmStat(i)[k] ?? 0]))]))

  /** Every ordered pair (i -> j) of `members` sends one line to j's echo server and must get it back. */
  const round = (tag, members) => {
    const pairs = members.flatMap((i) => members.filter((j) => j !== i).map((j) => [i, j]))
    const script = pairs
      .map(
        ([i, j]) =>
          `(nsenter --net=/run/netns/${podNs(i)} timeout 20 sh -c 'echo ${tag}-${i}-${j} | busybox nc ${podAddr(j)} 8000' > ${work}/ans-${tag}-${i}-${j} 2>&1) &`,
      )
      .join('\n')
    const started = Date.now()
    sh(`${script}\nwait`)
    const bad = pairs.filter(
      ([i, j]) => readFileSync(`${work}/ans-${tag}-${i}-${j}`, 'utf8').trim() !== `${tag}-${i}-${j}`,
    )
    return { pairs: pairs.length, bad: bad.map(([i, j]) => `${i}->${j}`), ms: Date.now() - started }
  }
  /** Checks that every SA of `members` (towards members) counted packets between two counter snapshots. */
  const everySaUsed = (before, after, members, what) => {
    const peers = new Set(members.map(nodeAddr))
    let ok = true
    for (const i of members) {
      const sas = after[i].filter((s) => peers.has(s.peer))
      const inb = sas.filter((s) => s.dir === 'in')
      const outb = sas.filter((s) => s.dir === 'out')
      const used = sas.every((s) => {
        const b = before[i].find((x) => x.dir === s.dir && x.peer === s.peer && x.spi === s.spi && x.key === s.key)
        return s.packets > (b?.packets ?? 0)
      })
      const distinctMarks = new Set(inb.map((s) => s.mark)).size === inb.length && inb.every((s) => s.mark)
      ok &&= inb.length === members.length - 1 && outb.length === members.length - 1 && used && distinctMarks
      if (!used || !distinctMarks) say(`node ${i} SAs: ${JSON.stringify(sas)} before: ${JSON.stringify(before[i])}`)
    }
    return check(
      ok,
      `${what}: on every node, ${members.length - 1} IN SAs (one per peer, each its own mark) and ${members.length - 1} OUT SAs all counted packets`,
    )
  }
  const noXfrmErrors = (before, after, members, what) => {
    const grew = members.flatMap((i) =>
      errorStats.filter((k) => after[i][k] > before[i][k]).map((k) => `node ${i} ${k} +${after[i][k] - before[i][k]}`),
    )
    return check(
      grew.length === 0,
      `${what}: no XFRM input errors (no missing state, no wrong key, no template mismatch)${grew.length ? `: ${grew.join(', ')}` : ''}`,
    )
  }

  await waitFor('every pod echo server listening', () => servers.every((s) => listening(s.pid)), 30000)
  // --- all pairs, SPI 1 -------------------------------------------------------------------------------------------
  since = Date.now()
  let c0 = counters(ids)
  let e0 = errors(ids)
  let r = round('a', ids)
  check(
    r.bad.length === 0,
    `${n} nodes: all ${r.pairs} ordered pod pairs exchanged a line over TCP (${r.ms} ms)${r.bad.length ? `; failed: ${r.bad.join(' ')}` : ''}`,
  )
  let c1 = counters(ids)
  everySaUsed(c0, c1, ids, `${n} nodes, SPI 1`)
  noXfrmErrors(e0, errors(ids), ids, `${n} nodes, SPI 1`)
  out.countersSpi1 = c1
  lap('allPairsMs', since)
  if (n === 3) {
    out.node1Rules = redact(
      sh(
        `ip -n ${nodeNs(1)} -s xfrm state; echo; ip -n ${nodeNs(1)} xfrm policy; echo; tc -n ${nodeNs(1)} filter show dev eth0 ingress`,
      ),
    )
    process.stdout.write(`--- node 1 of 3: ip -s xfrm state, ip xfrm policy, tc ---\n${out.node1Rules}\n---\n`)
  }

  if (n === 3) {
    // --- rotation with a connection flowing -----------------------------------------------------------------------
    since = Date.now()
    const client = spawnIn(podNs(1), ['busybox', 'nc', podAddr(2), '8000'], 'pipe')
    children.push(client)
    let echoed = ''
    let exited = false
    client.stdout.setEncoding('utf8').on('data', (d) => {
      echoed += d
    })
    client.on('exit', () => {
      exited = true
    })
    let sent = 0
    const ticker = setInterval(() => {
      if (!exited) client.stdin.write(`line${sent++}\n`)
    }, 100)
    await waitFor('the long connection to carry lines', () => echoed.split('\n').length > 5, 30000)
    writeKey(2, 0x22)
    say('key file rotated to SPI 2 with pod 1 -> pod 2 flowing')
    await waitFor('every node to move to SPI 2', () => converged(ids, 2), 60000)
    // The same connection must then cross the SPI 2 SAs themselves: pod 1 -> pod 2 goes out on node 1's SPI 2 OUT
    // state towards node 2 and comes back through node 1's SPI 2 IN state from node 2.
    const spi2 = () =>
      counters([1])[1]
        .filter((s) => s.spi === 2 && s.peer === nodeAddr(2))
        .map((s) => s.packets)
    const atRotation = sent
    await waitFor(
      'the flowing connection on the SPI 2 SAs',
      () => sent > atRotation + 10 && spi2().length === 2 && spi2().every((p) => p >= 10),
      30000,
    )
    clearInterval(ticker)
    client.stdin.end()
    await waitFor('the long connection to end', () => exited, 30000)
    const got = echoed.split('\n').filter(Boolean)
    check(
      sent > 10 && got.length === sent && got.every((l, k) => l === `line${k}`) && client.exitCode === 0,
      `a TCP connection kept flowing through the rotation onto the SPI 2 SAs (${sent} lines sent, ${sent - atRotation} after the rotation, ${got.length} echoed in order)`,
    )
    c0 = counters(ids)
    e0 = errors(ids)
    r = round('b', ids)
    check(
      r.bad.length === 0,
      `after the rotation all ${r.pairs} pairs exchanged a line${r.bad.length ? `; failed: ${r.bad.join(' ')}` : ''}`,
    )
    c1 = counters(ids)
    check(
      ids.every((i) => c1[i].every((s) => s.spi === 2)),
      'only SPI 2 SAs remain',
    )
    everySaUsed(c0, c1, ids, 'SPI 2')
    noXfrmErrors(e0, errors(ids), ids, 'SPI 2')
    out.countersSpi2 = c1
    lap('rotationMs', since)

    // --- plaintext from a remote pod is refused -----------------------------------------------------------------------
    // `action ok` ahead of tc_mark_encrypt on node 1's pod veth: pod 1's packets leave unmarked, in the clear.
    since = Date.now()
    const m0 = xfrmStat(2).XfrmInTmplMismatch
    sh(`tc -n ${nodeNs(1)} filter add dev vp ingress prio 1 matchall action ok`)
    const plain = sh(
      `nsenter --net=/run/netns/${podNs(1)} sh -c 'timeout 4 sh -c "echo plain | busybox nc ${podAddr(2)} 8000"; echo rc=$?'`,
    )
    sh(`tc -n ${nodeNs(1)} filter del dev vp ingress prio 1`)
    const m1 = xfrmStat(2).XfrmInTmplMismatch
    check(
      !plain.includes('plain') && m1 > m0,
      `plaintext pod 1 -> pod 2 refused by node 2 (no echo; XfrmInTmplMismatch ${m0} -> ${m1})`,
    )
    out.plaintext = { tmplMismatch: [m0, m1] }
    r = round('c', [1, 2])
    check(r.bad.length === 0, 'with the marking back, pod 1 and pod 2 talk again')
    lap('plaintextMs', since)

    // --- node 3 reboots: a new boot id, its rules gone meanwhile, every pair key with it re-derived ---------------------
    since = Date.now()
    const keysBefore = counters(ids)
    await ctl[3].close() // a reboot takes the node's kernel state with it; its node info stays published
    ctl[3] = startNode(3, { bootID: bootOf(3, 2), withdraw: false })
    await waitFor(
      'node 3 back with its new boot id',
      () => {
        const k = counters(ids)
        return (
          converged(ids, 2) &&
          [1, 2].every((i) =>
            k[i].filter((s) => s.peer === nodeAddr(3)).every((s) => !keysBefore[i].some((b) => b.key === s.key)),
          )
        )
      },
      60000,
    )
    const keysAfter = counters(ids)
    const towards3 = (c, i) => c[i].filter((s) => s.peer === nodeAddr(3)).map((s) => s.key)
    const among12 = (c, i) =>
      c[i]
        .filter((s) => s.peer !== nodeAddr(3))
        .map((s) => `${s.dir} ${s.peer} ${s.key} ${s.mark}`)
        .sort()
    check(
      [1, 2].every(
        (i) =>
          towards3(keysAfter, i).length === 2 &&
          towards3(keysAfter, i).every((k) => !towards3(keysBefore, i).includes(k)),
      ),
      'node 3 rebooted: nodes 1 and 2 re-derived both SAs with node 3 (new pair keys)',
    )
    check(
      [1, 2].every((i) => JSON.stringify(among12(keysAfter, i)) === JSON.stringify(among12(keysBefore, i))),
      'the SAs between nodes 1 and 2 did not change',
    )
    c0 = counters(ids)
    e0 = errors(ids)
    r = round('d', ids)
    check(
      r.bad.length === 0,
      `after the reboot all ${r.pairs} pairs exchanged a line${r.bad.length ? `; failed: ${r.bad.join(' ')}` : ''}`,
    )
    everySaUsed(c0, counters(ids), ids, 'after the reboot')
    noXfrmErrors(e0, errors(ids), ids, 'after the reboot')
    lap('rebootMs', since)
  }

  if (n === 5) {
    // --- node 5 leaves -----------------------------------------------------------------------------------------------
    since = Date.now()
    const stay = ids.filter((i) => i !== 5)
    const before = counters(stay)
    const left = ctl[5]
    delete ctl[5]
    await left.close() // withdraws its node info
    await waitFor('nodes 1-4 to drop node 5', () => converged(stay, 1), 60000)
    const gone = stay.every((i) => {
      const s = xfrm[i].dumpStates()
      const p = xfrm[i].dumpPolicies()
      return (
        !s.some((x) => x.src === nodeAddr(5) || x.dst === nodeAddr(5)) &&
        !p.some(
          (x) =>
            x.selector.src === '10.244.5.0/24' ||
            x.selector.dst === '10.244.5.0/24' ||
            x.templates.some((tm) => tm.src === nodeAddr(5) || tm.dst === nodeAddr(5)),
        ) &&
        !ctl[i].installed.peers.has(nodeAddr(5)) &&
        !ctl[i].installed.cidrs.has('10.244.5.0/24')
      )
    })
    check(gone, 'node 5 left: no state, policy, peer mark or pod CIDR of it remains on nodes 1-4')
    check(xfrm[5].dumpStates().length === 0 && xfrm[5].dumpPolicies().length === 0, 'node 5 removed its own rules')
    const after = counters(stay)
    const same = (c, i) =>
      c[i]
        .map((s) => `${s.dir} ${s.peer} ${s.spi} ${s.mark} ${s.key}`)
        .sort()
        .join()
    check(
      stay.every(
        (i) =>
          same(after, i) ===
          same(before, i)
            .split(',')
            .filter((x) => !x.includes(nodeAddr(5)))
            .join(),
      ),
      'nodes 1-4 kept their SAs with each other untouched (same marks and keys)',
    )
    e0 = errors(stay)
    r = round('e', stay)
    check(
      r.bad.length === 0,
      `the 4 remaining nodes: all ${r.pairs} pairs exchanged a line${r.bad.length ? `; failed: ${r.bad.join(' ')}` : ''}`,
    )
    everySaUsed(after, counters(stay), stay, '4 remaining nodes')
    noXfrmErrors(e0, errors(stay), stay, '4 remaining nodes')
    lap('leaveMs', since)
  }

  // --- teardown ------------------------------------------------------------------------------------------------------
  since = Date.now()
  for (const c of Object.values(ctl)) await c.close()
  for (const c of Object.values(xfrm)) c.close()
  for (const c of children) c.kill('SIGKILL')
  const cleanup = join(work, 'cleanup.ip')
  writeFileSync(
    cleanup,
    `${ids.flatMap((i) => [`netns del ${nodeNs(i)}`, `netns del ${podNs(i)}`]).join('\n')}\nlink del ${bridge}\n`,
  )
  execFileSync('ip', ['-batch', cleanup])
  lap('teardownMs', since)
  return out
}
