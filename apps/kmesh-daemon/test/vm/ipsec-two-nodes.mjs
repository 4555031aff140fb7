// Guest side of test/ipsec-two-nodes.vm.test.ts: runs as root inside the test VM (tools/vm, Debian 6.1 kernel with ESP/GCM).
// Two network namespaces are two nodes joined by a veth; each has one "pod" namespace behind a veth. Two
// IpsecController instances (one per node, XFRM and tc inside the node's namespace) share a node-info directory and
// a key file. Prints step lines and ends with `RESULT <json>`; exits non-zero if a check failed.
//
// Speed: under TCG a process start costs 0.1–0.7 s (a node process several seconds) and the first import of a module
// tree several seconds (cold 9p reads), so this script starts few processes: the topology is five `ip -batch` runs,
// the controllers share this process and attach tc with one `tc -batch` each, counters come from our own netlink
// dumps and from /proc/<pid>/net/xfrm_stat of a process parked in each node namespace, the pods run busybox nc (not
// node), and waits are for events (counters, listening sockets, exits), not fixed sleeps.
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

if (process.env.KMESH_IN_VM !== '1') {
  process.stderr.write(
    'ipsec-two-nodes.mjs changes sysctls of its network namespace: run it in the test VM (node tools/vm/run.mjs FILE)\n',
  )
  process.exit(2)
}
// Loading the ESP/GCM modules (and the kernel's crypto self-tests) takes seconds under TCG whenever it happens; start
// it now, on the other vCPU, while this process reads its imports. Only a warm-up: the kernel loads whatever is
// missing on demand, so a failure here changes nothing but time. Awaited before the first state is installed.
const warmUp = new Promise((resolve) =>
  spawn(
    'modprobe',
    [
      '-a',
      'esp4',
      'xfrm_user',
      'gcm',
      'ghash_generic',
      'ctr',
      'seqiv',
      'cls_bpf',
      'sch_ingress',
      'act_gact',
      'cls_matchall',
    ],
    { stdio: 'ignore' },
  )
    .on('exit', resolve)
    .on('error', resolve),
)
const { XfrmClient } = await import('@kmesh-ts/ipsec')
const { IpsecController } = await import('../../dist/ipsec/index.js')
const importedAt = process.uptime()
const t0 = Date.now()
const timings = { nodeAndImportsMs: Math.round(importedAt * 1000) }
const say = (msg) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`)
const sh = (cmd) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' })
const failures = []
const check = (ok, what) => {
  say(`${ok ? 'ok' : 'NOT OK'} - ${what}`)
  if (!ok) failures.push(what)
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const waitFor = async (what, pred, ms = 60000) => {
  const end = Date.now() + ms
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}
const lap = (name, since) => {
  timings[name] = Date.now() - since
}

// A logger with the four methods the controller calls: importing pino costs ~5 s of cold reads under TCG.
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
const log = logger(process.env.IPSEC_VM_LOG_LEVEL ?? 'info')

// --- topology ------------------------------------------------------------------------------------------------
// podA 10.244.1.10 ─ vpa[nodeA 192.168.77.1] nA ══ nB [192.168.77.2 nodeB] vpb ─ podB 10.244.2.10
let since = Date.now()
const work = mkdtempSync(join(tmpdir(), 'kmesh-ipsec-vm-'))
// New namespaces inherit this VM's IPv4 settings (devconf_inherit_init_net=1): forwarding on without a sysctl
// process per node. Only the throw-away VM's root namespace is changed (guarded above).
writeFileSync('/proc/sys/net/core/devconf_inherit_init_net', '1')
writeFileSync('/proc/sys/net/ipv4/ip_forward', '1')
const batches = {
  root: [
    'netns add nodeA',
    'netns add nodeB',
    'netns add podA',
    'netns add podB',
    'link add nA netns nodeA type veth peer name nB netns nodeB',
    'link add eth0 netns podA type veth peer name vpa netns nodeA',
    'link add eth0 netns podB type veth peer name vpb netns nodeB',
  ],
}
for (const [node, nic, addr, vp, gw, remoteCidr, remoteNode, pod, podAddr] of [
  ['nodeA', 'nA', '192.168.77.1', 'vpa', '10.244.1.1', '10.244.2.0/24', '192.168.77.2', 'podA', '10.244.1.10'],
  ['nodeB', 'nB', '192.168.77.2', 'vpb', '10.244.2.1', '10.244.1.0/24', '192.168.77.1', 'podB', '10.244.2.10'],
]) {
  batches[node] = [
    'link set lo up',
    `addr add ${addr}/24 dev ${nic}`,
    `link set ${nic} up`,
    `addr add ${gw}/24 dev ${vp}`,
    `link set ${vp} up`,
    `route add ${remoteCidr} via ${remoteNode}`,
  ]
  batches[pod] = [
    'link set lo up',
    `addr add ${podAddr}/24 dev eth0`,
    'link set eth0 up',
    `route add default via ${gw}`,
  ]
}
for (const [ns, lines] of Object.entries(batches)) {
  const file = join(work, `${ns}.ip`)
  writeFileSync(file, `${lines.join('\n')}\n`)
  execFileSync('ip', [...(ns === 'root' ? [] : ['-n', ns]), '-batch', file], { stdio: ['ignore', 'ignore', 'inherit'] })
}
lap('topologyMs', since)
say(`topology ready (${Object.keys(batches).length} ip -batch runs)`)

// --- pods' listeners: busybox nc (static, starts in milliseconds; a node process costs seconds under TCG) -----------
const inNs = (ns, argv, stdin = 'ignore') =>
  spawn('nsenter', [`--net=/run/netns/${ns}`, ...argv], { stdio: [stdin, 'pipe', 'inherit'] })
const collect = (child) => {
  const o = { text: '', exited: false }
  child.stdout.setEncoding('utf8').on('data', (d) => {
    o.text += d
  })
  child.on('exit', () => {
    o.exited = true
  })
  return o
}
// 8080: the encrypted connection's lines, in order. 8081: must never accept the plaintext connect attempt.
// Their stdin stays open: on stdin EOF nc would half-close the connection and the peer's nc would exit.
const server = inNs('podB', ['busybox', 'nc', '-l', '-p', '8080'], 'pipe')
const trap = inNs('podB', ['busybox', 'nc', '-l', '-p', '8081'], 'pipe')
const serverOut = collect(server)
collect(trap) // drains its stdout; what reaches the trap is read from its sockets below
/** TCP sockets (v4 and v6: nc listens on ::) of the namespace `pid` lives in, from /proc: local port, state (0A = LISTEN). */
const sockets = (pid) =>
  [
    ...['tcp', 'tcp6']
      .map((f) => readFileSync(`/proc/${pid}/net/${f}`, 'utf8'))
      .join('\n')
      .matchAll(/^\s*\d+: [0-9A-F]+:([0-9A-F]{4}) [0-9A-F]+:[0-9A-F]{4} ([0-9A-F]{2}) /gm),
  ].map((m) => ({ port: parseInt(m[1], 16), state: m[2] }))
const listening = (pid) =>
  sockets(pid)
    .filter((x) => x.state === '0A')
    .map((x) => x.port)
// One parked process per node namespace: /proc/<pid>/net/xfrm_stat is that namespace's counters, read without a spawn.
const parked = Object.fromEntries(
  ['nodeA', 'nodeB'].map((ns) => [
    ns,
    spawn('nsenter', [`--net=/run/netns/${ns}`, 'sleep', '3600'], { stdio: 'ignore' }),
  ]),
)
const xfrmStat = (ns, name) =>
  Number(
    new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${parked[ns].pid}/net/xfrm_stat`, 'utf8'))?.[1] ??
      NaN,
  )

// --- keys, node info, controllers --------------------------------------------------------------------------------
since = Date.now()
await warmUp
lap('moduleWarmUpWaitMs', since)
since = Date.now()
const keyFile = join(work, 'keys', 'ipsec.json')
const nodeInfoDir = join(work, 'nodeinfo')
mkdirSync(join(work, 'keys'))
const writeKey = (spi, byte) => {
  const tmp = `${keyFile}.tmp`
  writeFileSync(
    tmp,
    JSON.stringify({
      spi,
      aeadKeyName: 'rfc4106(gcm(aes))',
      aeadKey: Buffer.alloc(36, byte).toString('base64'),
      length: 128,
    }),
    { mode: 0o600 },
  )
  renameSync(tmp, keyFile)
}
writeKey(1, 0x11)
const common = { keyFile, nodeInfoDir, resyncMs: 300, debounceMs: 30 }
let step = Date.now()
const a = IpsecController.start({
  ...common,
  log: log.child({ node: 'node-a' }),
  netns: '/run/netns/nodeA',
  pinRoot: '/sys/fs/bpf/kmesh-vm-a',
  encryptDevices: ['vpa'],
  decryptDevices: ['nA'],
  node: {
    name: 'node-a',
    addresses: ['192.168.77.1'],
    podCIDRs: ['10.244.1.0/24'],
    bootID: 'aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa',
  },
})
lap('controllerAStartMs', step)
step = Date.now()
const b = IpsecController.start({
  ...common,
  log: log.child({ node: 'node-b' }),
  netns: '/run/netns/nodeB',
  pinRoot: '/sys/fs/bpf/kmesh-vm-b',
  encryptDevices: ['vpb'],
  decryptDevices: ['nB'],
  node: {
    name: 'node-b',
    addresses: ['192.168.77.2'],
    podCIDRs: ['10.244.2.0/24'],
    bootID: 'bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb',
  },
})
lap('controllerBStartMs', step)
a.reconcile()
lap('controllersMs', since)
say('controllers started and reconciled')

// Our own netlink view of each node (dumps cost no process).
const xfrm = {
  nodeA: XfrmClient.open({ netns: '/run/netns/nodeA' }),
  nodeB: XfrmClient.open({ netns: '/run/netns/nodeB' }),
}
const espCounters = (ns) =>
  xfrm[ns].dumpStates().map((s) => ({
    src: s.src,
    dst: s.dst,
    spi: s.spi,
    bytes: Number(s.current.bytes),
    packets: Number(s.current.packets),
  }))
const isReject = (p) => p.mark?.value === 0 && p.mark?.mask === 0xffffffff
const rejectPolicies = (ns) => xfrm[ns].dumpPolicies().filter(isReject)

// iproute2's view, once, for the record (printed rules never show key material: the aead key is redacted).
since = Date.now()
const redact = (text) => text.replace(/(aead \S+) 0x[0-9a-f]+/g, '$1 [key redacted]')
const listing = redact(
  sh(
    ['nodeA', 'nodeB']
      .map((n) => `echo "== ${n} states"; ip -n ${n} xfrm state; echo "== ${n} policies"; ip -n ${n} xfrm policy`)
      .join('; ') +
      '; echo "== nodeA tc-vpa"; tc -n nodeA filter show dev vpa ingress; echo "== nodeA tc-nA"; tc -n nodeA filter show dev nA ingress',
  ),
)
const section = Object.fromEntries(
  [...listing.matchAll(/^== (\S+) (\S+)\n([\s\S]*?)(?=^== |$(?![\s\S]))/gm)].map(([, n, what, text]) => [
    `${n} ${what}`,
    text.trim(),
  ]),
)
const before = {
  nodeA: { states: section['nodeA states'], policies: section['nodeA policies'] },
  nodeB: { states: section['nodeB states'], policies: section['nodeB policies'] },
}
process.stdout.write(
  `--- node A rules ---\n${before.nodeA.states}\n${before.nodeA.policies}\n--- node B rules ---\n${before.nodeB.states}\n${before.nodeB.policies}\n`,
)
const count = (text, re) => (text.match(re) ?? []).length
check(
  count(before.nodeA.states, /^src /gm) === 2 && count(before.nodeB.states, /^src /gm) === 2,
  'each node has an IN and an OUT ESP state',
)
check(
  count(before.nodeA.policies, /^src /gm) === 5 && count(before.nodeB.policies, /^src /gm) === 5,
  'each node has 5 policies: Kmesh’s IN, FWD, OUT and our IN, FWD for unmarked plaintext',
)
check(
  /dir out[\s\S]*mark 0xe0/.test(before.nodeA.policies) && /dir in[\s\S]*mark 0xd0/.test(before.nodeA.policies),
  'OUT policy mark 0xe0, IN policy mark 0xd0',
)
for (const [ns, remote, local, tmpl] of [
  ['nodeA', '10.244.2.0/24', '10.244.1.0/24', 'src 192.168.77.2 dst 192.168.77.1'],
  ['nodeB', '10.244.1.0/24', '10.244.2.0/24', 'src 192.168.77.1 dst 192.168.77.2'],
]) {
  const ok = ['in', 'fwd'].every((dir) =>
    before[ns].policies.includes(
      `src ${remote} dst ${local} \n\tdir ${dir} priority 0 ptype main \n\tmark 0/0xffffffff \n\ttmpl ${tmpl}\n\t\tproto esp reqid 1 mode tunnel`,
    ),
  )
  check(
    ok,
    `${ns}: IN and FWD ${remote} -> ${local}, mark 0/0xffffffff, ESP template ${tmpl} (plaintext from the remote pods is rejected)`,
  )
}
check(
  section['nodeA tc-vpa'].includes('tc_mark_encrypt') && section['nodeA tc-nA'].includes('tc_mark_decrypt'),
  'tc programs attached (encrypt on the pod veth, decrypt on the NIC)',
)
lap('listingMs', since)

// --- a TCP connection between the pods, kept open across a key rotation -------------------------------------------
since = Date.now()
await waitFor('pod B listening on 8080 and 8081', () => {
  const l = listening(server.pid)
  return l.includes(8080) && l.includes(8081)
})
// Client in pod A: this process writes a line every 100 ms into its stdin until the rotation is done, then ends it.
const client = inNs('podA', ['busybox', 'nc', '10.244.2.10', '8080'], 'pipe')
const clientOut = collect(client)
let sent = 0
const ticker = setInterval(() => {
  if (!clientOut.exited) client.stdin.write(`line${sent++}\n`)
}, 100)
say('pod A connecting to pod B:8080')
const allCarry = (spi) =>
  ['nodeA', 'nodeB'].every((ns) => {
    const s = espCounters(ns)
    return s.length === 2 && s.every((x) => x.spi === spi && x.packets >= 3)
  })
await waitFor('ESP packets on every SPI 1 state', () => allCarry(1), 30000)
const beforeRotation = { nodeA: espCounters('nodeA'), nodeB: espCounters('nodeB') }
say(`ESP before rotation: ${JSON.stringify(beforeRotation)}`)
check(true, 'both directions of the TCP connection go through ESP (IN and OUT states count packets on both nodes)')
check(
  ['nodeA', 'nodeB'].every((ns) => rejectPolicies(ns).every((p) => p.current.useTime === 0n)),
  'the plaintext-rejecting policies never matched the encrypted connection (use time 0)',
)

// --- key rotation: a new SPI and key in the watched file, mid-connection ----------------------------------------
writeKey(2, 0x22)
say('key file rotated to SPI 2')
await waitFor(
  'both nodes to move to SPI 2',
  () => {
    const spis = [...a.installed.states.values(), ...b.installed.states.values()].map((s) => s.spi)
    return a.local.spi === 2 && b.local.spi === 2 && spis.length === 4 && spis.every((s) => s === 2)
  },
  30000,
)
say('both nodes re-derived their rules with SPI 2')
try {
  await waitFor('ESP packets on every SPI 2 state', () => allCarry(2), 30000)
} catch (err) {
  // What the operator needs to see why: the SAs with their counters, XFRM error counters, the client's state.
  say(
    `ESP now: ${JSON.stringify({ nodeA: espCounters('nodeA'), nodeB: espCounters('nodeB') })}; client exited ${clientOut.exited} (${client.exitCode}); sent ${sent}; server got ${serverOut.text.split('\n').filter(Boolean).length}`,
  )
  for (const ns of ['nodeA', 'nodeB'])
    say(
      `${ns} xfrm_stat: ${readFileSync(`/proc/${parked[ns].pid}/net/xfrm_stat`, 'utf8')
        .split('\n')
        .filter((l) => !/\s0$/.test(l))
        .join('; ')}`,
    )
  throw err
}
clearInterval(ticker)
client.stdin.end() // busybox nc shuts its write side down on EOF; the server prints what it got and exits
await waitFor('the server to finish', () => serverOut.exited, 30000)
await waitFor('the client to finish', () => clientOut.exited, 30000)
const afterRotation = { nodeA: espCounters('nodeA'), nodeB: espCounters('nodeB') }
say(`ESP after rotation: ${JSON.stringify(afterRotation)}`)
const received = serverOut.text.split('\n').filter(Boolean)
check(
  sent > 0 && received.length === sent && received.every((l, i) => l === `line${i}`) && client.exitCode === 0,
  `the TCP connection survived the rotation (${sent} lines sent, ${received.length} received in order, client exit ${client.exitCode})`,
)
check(
  afterRotation.nodeA.every((s) => s.spi === 2 && s.packets > 0) &&
    afterRotation.nodeB.every((s) => s.spi === 2 && s.packets > 0),
  'after the rotation the SPI 2 states carry the traffic',
)
lap('connectionAndRotationMs', since)

// --- unmarked traffic from a remote pod is not accepted -------------------------------------------------------------
// A matchall filter ahead of tc_mark_encrypt on pod A's veth (`action ok` ends classification) lets pod A's packets
// leave node A unmarked: no OUT policy matches, they cross in plaintext. Node B's tc_mark_decrypt leaves them
// unmarked, Kmesh's 0xd0 policies do not match, ours (src 10.244.1.0/24, mark 0) do and want ESP: dropped.
since = Date.now()
const stat = (name) => xfrmStat('nodeB', name)
// Read synchronously (no event loop turn between the attempt and the check): gone, or a non-listening socket on 8081.
const accepted = () => {
  try {
    return sockets(trap.pid).some((x) => x.port === 8081 && x.state !== '0A') || !listening(trap.pid).includes(8081)
      ? 1
      : 0
  } catch {
    return 1
  }
}
// Waits: 1 s where no answer is expected (a drop is deterministic), 3 s where one is (it costs only when it fails).
const fromPodA = (withTcp = false) =>
  sh(
    `nsenter --net=/run/netns/podA sh -c '${withTcp ? '(echo plaintext | busybox nc -w 1 10.244.2.10 8081 >/dev/null 2>&1; echo nc=$?) & ' : ''}busybox ping -c 1 -W ${withTcp ? 1 : 3} 10.244.2.10 >/dev/null 2>&1; echo ping=$?; wait'`,
  )
const plain0 = { mismatch: stat('XfrmInTmplMismatch'), noPols: stat('XfrmInNoPols'), accepted: accepted() }
sh('tc -n nodeA filter add dev vpa ingress prio 1 matchall action ok')
const bypassed = fromPodA(true) // the ping and a TCP connect, side by side: each waits 1 s for nothing
const plain1 = { mismatch: stat('XfrmInTmplMismatch'), noPols: stat('XfrmInNoPols'), accepted: accepted() }
const usedReject = rejectPolicies('nodeB')
  .filter((p) => p.current.useTime > 0n)
  .map((p) => p.dir)
say(
  `plaintext from pod A (mark path bypassed): ${bypassed.trim().replace(/\n/g, ' ')}; node B XfrmInTmplMismatch ${plain0.mismatch} -> ${plain1.mismatch}, XfrmInNoPols ${plain0.noPols} -> ${plain1.noPols}, connections accepted ${plain0.accepted} -> ${plain1.accepted}`,
)
check(
  bypassed.includes('ping=1') && bypassed.includes('nc=1') && plain1.accepted === plain0.accepted,
  'plaintext ping and TCP connect from pod A to pod B get no answer',
)
check(
  plain1.mismatch - plain0.mismatch >= 2,
  `node B dropped them on the ESP template (XfrmInTmplMismatch +${plain1.mismatch - plain0.mismatch})`,
)
check(
  usedReject.includes('fwd'),
  `the FWD policy for unmarked 10.244.1.0/24 -> 10.244.2.0/24 is the one that matched (used: ${usedReject.join(',')})`,
)

// Control, Kmesh parity: without our two policies the same plaintext is delivered (tc_mark_decrypt cleared the mark,
// nothing else matches). They are put back right after.
const ours = rejectPolicies('nodeB')
for (const p of ours) xfrm.nodeB.deletePolicy({ selector: p.selector, dir: p.dir, mark: p.mark })
const parity = fromPodA()
for (const p of ours)
  xfrm.nodeB.updatePolicy({
    selector: p.selector,
    dir: p.dir,
    mark: p.mark,
    priority: p.priority,
    action: p.action,
    templates: p.templates,
  })
const plain2 = { mismatch: stat('XfrmInTmplMismatch') }
check(
  parity.includes('ping=0') && plain2.mismatch === plain1.mismatch,
  'control: with Kmesh’s rules alone (our two policies removed) the same plaintext ping is answered',
)
check(rejectPolicies('nodeB').length === 2, 'our policies restored')

// Traffic that claims to be decrypted: plaintext marked 0xd0 (forged by a tc filter ahead of ours on B's NIC) meets the
// 0xd0 IN/FWD policy's ESP template without a security path and is dropped. The sender is node A itself, so its
// packets leave in the clear; unforged, node A's own plaintext is answered (its source is no pod CIDR: Kmesh and we
// both let it through).
const forged = sh(
  `tc -n nodeA filter del dev vpa ingress prio 1; nsenter --net=/run/netns/nodeA busybox ping -c 1 -W 3 10.244.2.10 >/dev/null 2>&1; echo control=$?; ` +
    `tc -n nodeB filter add dev nB ingress prio 1 matchall action skbedit mark 0xd0 continue && nsenter --net=/run/netns/nodeA busybox ping -c 1 -W 1 10.244.2.10 >/dev/null 2>&1; echo forged=$?; ` +
    'tc -n nodeB filter del dev nB ingress prio 1',
)
const plain3 = { mismatch: stat('XfrmInTmplMismatch') }
check(forged.includes('control=0'), 'control: an unmarked plaintext ping from node A (not a pod) to pod B is answered')
check(
  forged.includes('forged=1') && plain3.mismatch > plain2.mismatch,
  `plaintext marked 0xd0 without ESP is dropped by the policy (XfrmInTmplMismatch ${plain2.mismatch} -> ${plain3.mismatch})`,
)
lap('plaintextChecksMs', since)

// --- a node disappears, then shutdown removes everything ----------------------------------------------------------
since = Date.now()
b.close()
a.reconcile()
check(
  xfrm.nodeA.dumpStates().length === 0 && xfrm.nodeA.dumpPolicies().length === 0 && a.installed.cidrs.size === 0,
  'node B gone: node A removed every state, policy (ours included) and LPM entry for it',
)
check(
  xfrm.nodeB.dumpStates().length === 0 && xfrm.nodeB.dumpPolicies().length === 0,
  'node B shut down: its states and policies are gone',
)
a.close()
const tcLeft = sh(
  'tc -n nodeA filter show dev nA ingress; tc -n nodeA filter show dev vpa ingress; tc -n nodeB filter show dev nB ingress; tc -n nodeB filter show dev vpb ingress',
)
const pinsLeft = readdirSync('/sys/fs/bpf')
  .filter((n) => n.startsWith('kmesh-vm-'))
  .flatMap((n) => readdirSync(join('/sys/fs/bpf', n), { recursive: true }).map((f) => `${n}/${f}`))
check(
  !tcLeft.includes('tc_mark') && pinsLeft.length === 0,
  `both nodes shut down: tc filters and pins gone${pinsLeft.length ? ` (left: ${pinsLeft.join(', ')})` : ''}`,
)
lap('teardownMs', since)

const plaintext = {
  tmplMismatch: [plain0.mismatch, plain1.mismatch],
  noPols: [plain0.noPols, plain1.noPols],
  forged: [plain2.mismatch, plain3.mismatch],
  usedReject,
  parityAnswered: parity.includes('ping=0'),
}
const result = {
  failures,
  before,
  beforeRotation,
  afterRotation,
  plaintext,
  timings,
  seconds: (Date.now() - t0) / 1000,
}
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
for (const c of [server, client, trap, ...Object.values(parked)]) c.kill('SIGKILL')
for (const c of Object.values(xfrm)) c.close()
writeFileSync(
  join(work, 'cleanup.ip'),
  ['nodeA', 'nodeB', 'podA', 'podB'].map((ns) => `netns del ${ns}`).join('\n') + '\n',
)
execFileSync('ip', ['-batch', join(work, 'cleanup.ip')])
process.exit(failures.length ? 1 : 0)
