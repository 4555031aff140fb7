// Guest side of test/ipsec-kmesh-interop.vm.test.ts: runs as root inside the test VM (tools/vm, Debian 6.1 kernel).
// Interoperability with upstream Kmesh (issue 16). Node K runs "Kmesh's rules": the XFRM states and policies Kmesh
// installs (facts of issue 6 / docs/reference/kmesh-dataplane.md §1.10, §4.4), written here as `ip xfrm` commands with
// keys derived by this script's own SHA-512 code, and a tc flower filter standing in for Kmesh's tc_mark_encrypt (a
// destination in the remote pod CIDR gets mark 0xe0). Kmesh's tc_mark_decrypt leaves ESP alone, so nothing is needed
// on K's NIC. The other nodes run our IpsecController with per-peer marks.
//  1. two nodes, K and T: pods on K and T talk both ways through ESP (Kmesh supports two nodes only);
//  2. three nodes, K, T1, T2, with K doing what Kmesh does for two peers (the second IN state add fails with EEXIST and
//     is ignored; the IN/FWD policies are rewritten with the last peer's template): T1 and T2 talk; K cannot receive
//     from either (T1's traffic fails the template, T2's is decrypted with T1's key); and when a later pass of Kmesh's
//     loop leaves T1's template in the policies, K and T1 talk while K and T2 still cannot.
// Prints step lines and ends with `RESULT <json>`; exits non-zero if a check failed.
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

if (process.env.KMESH_IN_VM !== '1') {
  process.stderr.write('ipsec-kmesh-interop.mjs builds bridges and namespaces: run it in the test VM\n')
  process.exit(2)
}
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
      'cls_flower',
      'act_skbedit',
      'bridge',
    ],
    { stdio: 'ignore' },
  )
    .on('exit', resolve)
    .on('error', resolve),
)
const { XfrmClient } = await import('@kmesh-ts/ipsec')
const { IpsecController, writeNodeInfo } = await import('../../dist/ipsec/index.js')
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

writeFileSync('/proc/sys/net/core/devconf_inherit_init_net', '1')
writeFileSync('/proc/sys/net/ipv4/ip_forward', '1')
await warmUp

// The key file every node shares (Kmesh's format), and Kmesh's per-pair key, computed here from the reference text:
// SHA-512(raw key ‖ src IP string ‖ dst IP string ‖ src boot id[0,36) ‖ dst boot id[0,36)) cut to the key's length.
const RAW = Buffer.alloc(36, 0x5a)
const pairKey = (src, dst) =>
  createHash('sha512')
    .update(RAW)
    .update(src.ip)
    .update(dst.ip)
    .update(src.boot.slice(0, 36))
    .update(dst.boot.slice(0, 36))
    .digest()
    .subarray(0, RAW.length)

const results = {}
results.two = await scenario('two', ['K', 'T'])
results.three = await scenario('three', ['K', 'T1', 'T2'])
process.stdout.write(`RESULT ${JSON.stringify({ failures, results, timings, seconds: (Date.now() - t0) / 1000 })}\n`)
process.exit(failures.length ? 1 : 0)

async function scenario(tag, names) {
  say(`=== ${tag}: ${names.join(', ')} (K runs Kmesh's rules) ===`)
  // A letter of its own per scenario: 'two' and 'three' both begin with t, and the veths of the first, whose
  // namespaces are gone, may still be on their way out of the root namespace when the second adds its own.
  const letter = { two: 'w', three: 'h' }[tag] ?? tag[0]
  const out = { timings: {} }
  let since = Date.now()
  const nodes = names.map((name, k) => ({
    name,
    i: k + 1,
    ns: `ikm${letter}n${k + 1}`,
    pod: `ikm${letter}p${k + 1}`,
    ip: `192.168.77.${k + 1}`,
    podIp: `10.244.${k + 1}.10`,
    cidr: `10.244.${k + 1}.0/24`,
    boot: `${String(k + 1).repeat(8)}-2222-4222-8222-${'c'.repeat(12)}`,
  }))
  const byName = Object.fromEntries(nodes.map((n) => [n.name, n]))
  const work = mkdtempSync(join(tmpdir(), `kmesh-interop-${tag}-`))
  const bridge = `ikmbr${letter}`
  const batches = { root: [`link add ${bridge} type bridge`, `link set ${bridge} up`] }
  for (const n of nodes) {
    batches.root.push(
      `netns add ${n.ns}`,
      `netns add ${n.pod}`,
      `link add b${letter}x${n.i} type veth peer name eth0 netns ${n.ns}`,
      `link set b${letter}x${n.i} master ${bridge}`,
      `link set b${letter}x${n.i} up`,
      `link add eth0 netns ${n.pod} type veth peer name vp netns ${n.ns}`,
    )
    batches[n.ns] = [
      'link set lo up',
      `addr add ${n.ip}/24 dev eth0`,
      'link set eth0 up',
      `addr add 10.244.${n.i}.1/24 dev vp`,
      'link set vp up',
      ...nodes.filter((m) => m !== n).map((m) => `route add ${m.cidr} via ${m.ip}`),
    ]
    batches[n.pod] = [
      'link set lo up',
      `addr add ${n.podIp}/24 dev eth0`,
      'link set eth0 up',
      `route add default via 10.244.${n.i}.1`,
    ]
  }
  for (const [ns, lines] of Object.entries(batches)) {
    const file = join(work, `${ns}.ip`)
    writeFileSync(file, `${lines.join('\n')}\n`)
    execFileSync('ip', [...(ns === 'root' ? [] : ['-n', ns]), '-batch', file], {
      stdio: ['ignore', 'ignore', 'inherit'],
    })
  }
  const children = []
  for (const n of nodes) {
    n.server = spawn('nsenter', [`--net=/run/netns/${n.pod}`, 'busybox', 'nc', '-ll', '-p', '8000', '-e', '/bin/cat'], {
      stdio: 'ignore',
    })
    n.parked = spawn('nsenter', [`--net=/run/netns/${n.ns}`, 'sleep', '3600'], { stdio: 'ignore' })
    children.push(n.server, n.parked)
  }
  const xfrmStat = (n) =>
    Object.fromEntries(
      readFileSync(`/proc/${n.parked.pid}/net/xfrm_stat`, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(/\s+/))
        .map(([k, v]) => [k, Number(v)]),
    )
  out.timings.topologyMs = Date.now() - since

  // --- the kmesh-ts nodes: our controller, node info in a shared directory, K's node info as Kmesh publishes it ---------
  since = Date.now()
  const keyFile = join(work, 'ipsec.json')
  writeFileSync(
    keyFile,
    JSON.stringify({ spi: 1, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: RAW.toString('base64'), length: 128 }),
    {
      mode: 0o600,
    },
  )
  const nodeInfoDir = join(work, 'nodeinfo')
  mkdirSync(nodeInfoDir)
  const K = byName.K
  writeNodeInfo(nodeInfoDir, { name: 'node-k', spi: 1, addresses: [K.ip], bootID: K.boot, podCIDRs: [K.cidr] })
  const ours = nodes.filter((n) => n !== K)
  const ctl = {}
  for (const n of ours) {
    ctl[n.name] = IpsecController.start({
      keyFile,
      nodeInfoDir,
      resyncMs: 1000,
      debounceMs: 30,
      log: log.child({ node: n.name }),
      netns: `/run/netns/${n.ns}`,
      pinRoot: `/sys/fs/bpf/kmesh-vm-interop-${tag}-${n.i}`,
      discoverNics: true,
      node: { name: `node-${n.name.toLowerCase()}`, addresses: [n.ip], podCIDRs: [n.cidr], bootID: n.boot },
    })
    ctl[n.name].attachPod(`/run/netns/${n.pod}`)
  }
  await waitFor('our controllers to converge', () =>
    ours.every((n) => ctl[n.name].installed.states.size === 2 * (nodes.length - 1)),
  )

  // --- node K: Kmesh's rules, in the order Kmesh's loop adds them for each remote node ------------------------------
  const kmeshRules = (peers) =>
    peers.flatMap((r) => {
      const hex = (b) => `0x${b.toString('hex')}`
      return [
        // Ingress state: src remote, dst local, our SPI, key(remote -> local), output mark 0xd0.
        `xfrm state add src ${r.ip} dst ${K.ip} proto esp spi 0x1 reqid 1 mode tunnel aead rfc4106(gcm(aes)) ${hex(pairKey(r, K))} 128 output-mark 0xd0 mask 0xffffffff`,
        // Egress state: src local, dst remote, the remote's SPI, key(local -> remote).
        `xfrm state add src ${K.ip} dst ${r.ip} proto esp spi 0x1 reqid 1 mode tunnel aead rfc4106(gcm(aes)) ${hex(pairKey(K, r))} 128 output-mark 0xd0 mask 0xffffffff`,
        ...['in', 'fwd'].map(
          (dir) =>
            `xfrm policy update src 0.0.0.0/0 dst ${K.cidr} dir ${dir} tmpl src ${r.ip} dst ${K.ip} proto esp reqid 1 mode tunnel mark 0xd0 mask 0xffffffff`,
        ),
        `xfrm policy update src 0.0.0.0/0 dst ${r.cidr} dir out tmpl src ${K.ip} dst ${r.ip} proto esp spi 0x1 reqid 1 mode tunnel mark 0xe0 mask 0xffffffff`,
      ]
    })
  const peers = ours
  const rules = kmeshRules(peers)
  const rulesFile = join(work, 'kmesh-k.ip')
  writeFileSync(rulesFile, `${rules.join('\n')}\n`, { mode: 0o600 })
  // One `ip` per rule, carrying on after a failure as Kmesh carries on after EEXIST (`ip -force -batch` cannot: ip
  // xfrm exits on the first kernel error).
  const kmeshErrors = sh(
    `while IFS= read -r line; do ip -n ${K.ns} $line 2>&1 >/dev/null | sed "s|^|line: |" || true; done < ${rulesFile}`,
  )
  out.kmeshRules = rules.map(redact)
  out.kmeshErrors = kmeshErrors.trim()
  process.stdout.write(
    `--- node K: Kmesh's rules ---\n${out.kmeshRules.join('\n')}\n--- errors ---\n${out.kmeshErrors}\n---\n`,
  )
  // Kmesh's tc_mark_encrypt, for this test: destinations in a remote pod CIDR leave K's pod with mark 0xe0.
  sh(
    [
      `tc -n ${K.ns} qdisc add dev vp clsact`,
      ...peers.map(
        (r, k) =>
          `tc -n ${K.ns} filter add dev vp ingress prio ${k + 1} protocol ip flower dst_ip ${r.cidr} action skbedit mark 0xe0`,
      ),
    ].join(' && '),
  )
  const kx = XfrmClient.open({ netns: `/run/netns/${K.ns}` })
  out.timings.rulesMs = Date.now() - since

  const talk = (label, pairs) => {
    const script = pairs
      .map(
        ([a, b]) =>
          `(nsenter --net=/run/netns/${a.pod} timeout 6 sh -c 'echo ${label}-${a.name}-${b.name} | busybox nc ${b.podIp} 8000' > ${work}/ans-${label}-${a.name}-${b.name} 2>&1) &`,
      )
      .join('\n')
    sh(`${script}\nwait`)
    return Object.fromEntries(
      pairs.map(([a, b]) => [
        `${a.name}->${b.name}`,
        readFileSync(`${work}/ans-${label}-${a.name}-${b.name}`, 'utf8').trim() === `${label}-${a.name}-${b.name}`,
      ]),
    )
  }
  const kStates = () =>
    kx.dumpStates().map((s) => ({ src: s.src, dst: s.dst, spi: s.spi, packets: Number(s.current.packets) }))
  const stat0 = xfrmStat(K)
  const allPairs = nodes.flatMap((a) => nodes.filter((b) => b !== a).map((b) => [a, b]))

  if (tag === 'two') {
    const T = byName.T
    check(kmeshErrors === '', "K: every one of Kmesh's rules installed")
    const r = talk('x', allPairs)
    check(r['K->T'] && r['T->K'], `pods on K (Kmesh's rules) and T (kmesh-ts) talk both ways: ${JSON.stringify(r)}`)
    const ks = kStates()
    check(ks.length === 2 && ks.every((s) => s.packets > 0), `K's two SAs carried ESP: ${JSON.stringify(ks)}`)
    const ts = ctl.T.installed.states.size
    const tDump = XfrmClient.open({ netns: `/run/netns/${T.ns}` })
    const tStates = tDump.dumpStates().map((s) => ({
      src: s.src,
      dst: s.dst,
      spi: s.spi,
      mark: s.mark ? `0x${s.mark.value.toString(16)}` : '',
      packets: Number(s.current.packets),
    }))
    tDump.close()
    check(
      ts === 2 && tStates.every((s) => s.packets > 0),
      `T's two SAs (IN with its peer mark) carried ESP: ${JSON.stringify(tStates)}`,
    )
    const s1 = xfrmStat(K)
    check(
      ['XfrmInNoStates', 'XfrmInStateProtoError', 'XfrmInTmplMismatch'].every((k) => s1[k] === stat0[k]),
      'K saw no XFRM input error: the keys, SPIs and ESP of kmesh-ts are what Kmesh expects',
    )
    out.talk = r
    out.kStates = ks
    out.tStates = tStates
  } else {
    const T1 = byName.T1
    check(
      /File exists/.test(kmeshErrors) && kmeshErrors.trim().split('\n').length === 1,
      `K: the second ingress state (from T2, same dst ${K.ip}, SPI 1, ESP) is refused with EEXIST, as in Kmesh: ${kmeshErrors.split('\n')[0]}`,
    )
    const r = talk('y', allPairs)
    out.talk = r
    check(r['T1->T2'] && r['T2->T1'], 'the two kmesh-ts nodes talk to each other')
    check(!r['K->T1'] && !r['T1->K'] && !r['K->T2'] && !r['T2->K'], `K talks to neither: ${JSON.stringify(r)}`)
    const s1 = xfrmStat(K)
    out.kErrors = Object.fromEntries(
      ['XfrmInStateProtoError', 'XfrmInTmplMismatch', 'XfrmInNoStates'].map((k) => [k, s1[k] - stat0[k]]),
    )
    check(
      out.kErrors.XfrmInTmplMismatch > 0 && out.kErrors.XfrmInStateProtoError > 0,
      `K drops T1's ESP on the template (src T2) and T2's on the key (T1's state): ${JSON.stringify(out.kErrors)}`,
    )
    // A later pass of Kmesh's loop (map order varies) leaves T1's template: then K and T1 talk, T2 still cannot.
    for (const dir of ['in', 'fwd'])
      sh(
        `ip -n ${K.ns} xfrm policy update src 0.0.0.0/0 dst ${K.cidr} dir ${dir} tmpl src ${T1.ip} dst ${K.ip} proto esp reqid 1 mode tunnel mark 0xd0 mask 0xffffffff`,
      )
    const r2 = talk('z', allPairs)
    out.talkT1Template = r2
    check(
      r2['K->T1'] && r2['T1->K'] && !r2['K->T2'] && !r2['T2->K'] && r2['T1->T2'] && r2['T2->T1'],
      `with T1's template left in K's policies: K and T1 talk, K and T2 do not: ${JSON.stringify(r2)}`,
    )
  }

  since = Date.now()
  for (const c of Object.values(ctl)) await c.close()
  kx.close()
  for (const c of children) c.kill('SIGKILL')
  const cleanup = join(work, 'cleanup.ip')
  writeFileSync(
    cleanup,
    `${nodes.flatMap((n) => [`netns del ${n.ns}`, `netns del ${n.pod}`]).join('\n')}\nlink del ${bridge}\n`,
  )
  execFileSync('ip', ['-batch', cleanup])
  out.timings.teardownMs = Date.now() - since
  return out
}
