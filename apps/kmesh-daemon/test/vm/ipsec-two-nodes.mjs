// Guest side of test/ipsec-vm.test.ts: runs as root inside the test VM (tools/vm, Debian 6.1 kernel with ESP/GCM).
// Two network namespaces are two nodes joined by a veth; each has one "pod" namespace behind a veth. Two
// IpsecController instances (one per node, XFRM and tc inside the node's namespace) share a node-info directory and
// a key file. Prints step lines and ends with `RESULT <json>`; exits non-zero on the first failed check.
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { IpsecController } from '../../dist/ipsec/index.js'
import { createLogger } from '../../dist/log.js'

const t0 = Date.now()
const say = (msg) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`)
const sh = (cmd) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' })
const inNs = (ns, cmd) => sh(`nsenter --net=/run/netns/${ns} sh -c '${cmd}'`)
const failures = []
const check = (ok, what) => { say(`${ok ? 'ok' : 'NOT OK'} - ${what}`); if (!ok) failures.push(what) }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// --- topology ------------------------------------------------------------------------------------------------
// podA 10.244.1.10 ─ vpa[nodeA 192.168.77.1] nA ══ nB [192.168.77.2 nodeB] vpb ─ podB 10.244.2.10
// One shell for the whole setup: every process start is expensive under TCG.
const setup = ['nodeA', 'nodeB', 'podA', 'podB'].map((ns) => `ip netns add ${ns} && ip -n ${ns} link set lo up`)
setup.push('ip link add nA netns nodeA type veth peer name nB netns nodeB',
  'ip link add eth0 netns podA type veth peer name vpa netns nodeA',
  'ip link add eth0 netns podB type veth peer name vpb netns nodeB')
for (const [node, nic, addr, vp, gw, remoteCidr, remoteNode, pod, podAddr] of [
  ['nodeA', 'nA', '192.168.77.1', 'vpa', '10.244.1.1', '10.244.2.0/24', '192.168.77.2', 'podA', '10.244.1.10'],
  ['nodeB', 'nB', '192.168.77.2', 'vpb', '10.244.2.1', '10.244.1.0/24', '192.168.77.1', 'podB', '10.244.2.10'],
]) {
  setup.push(`ip -n ${node} addr add ${addr}/24 dev ${nic}`, `ip -n ${node} link set ${nic} up`, `ip -n ${node} addr add ${gw}/24 dev ${vp}`,
    `ip -n ${node} link set ${vp} up`, `ip -n ${node} route add ${remoteCidr} via ${remoteNode}`,
    `nsenter --net=/run/netns/${node} sysctl -qw net.ipv4.ip_forward=1`,
    `ip -n ${pod} addr add ${podAddr}/24 dev eth0`, `ip -n ${pod} link set eth0 up`, `ip -n ${pod} route add default via ${gw}`)
}
sh(setup.join(' && '))
say('topology ready')

// --- keys and node info ------------------------------------------------------------------------------------------
const work = mkdtempSync(join(tmpdir(), 'kmesh-ipsec-vm-'))
const keyFile = join(work, 'keys', 'ipsec.json')
const nodeInfoDir = join(work, 'nodeinfo')
sh(`mkdir -p ${join(work, 'keys')}`)
const writeKey = (spi, byte) => {
  const tmp = `${keyFile}.tmp`
  writeFileSync(tmp, JSON.stringify({ spi, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: Buffer.alloc(36, byte).toString('base64'), length: 128 }), { mode: 0o600 })
  renameSync(tmp, keyFile)
}
writeKey(1, 0x11)

const log = createLogger({ level: process.env.IPSEC_VM_LOG_LEVEL ?? 'info' })
const common = { keyFile, nodeInfoDir, resyncMs: 300, debounceMs: 30 }
const a = IpsecController.start({ ...common, log: log.child({ node: 'node-a' }), netns: '/run/netns/nodeA', pinRoot: '/sys/fs/bpf/kmesh-vm-a', encryptDevices: ['vpa'], decryptDevices: ['nA'],
  node: { name: 'node-a', addresses: ['192.168.77.1'], podCIDRs: ['10.244.1.0/24'], bootID: 'aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa' } })
const b = IpsecController.start({ ...common, log: log.child({ node: 'node-b' }), netns: '/run/netns/nodeB', pinRoot: '/sys/fs/bpf/kmesh-vm-b', encryptDevices: ['vpb'], decryptDevices: ['nB'],
  node: { name: 'node-b', addresses: ['192.168.77.2'], podCIDRs: ['10.244.2.0/24'], bootID: 'bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb' } })
a.reconcile()
say('controllers started and reconciled')

// Printed rules never show key material (the aead key column is redacted).
const redact = (text) => text.replace(/(aead \S+) 0x[0-9a-f]+/g, '$1 [key redacted]')
const rules = (ns) => { const [states, policies] = redact(inNs(ns, 'ip xfrm state; echo ==; ip xfrm policy')).split('==\n'); return { states: states.trim(), policies: policies.trim() } }
const before = { nodeA: rules('nodeA'), nodeB: rules('nodeB') }
process.stdout.write(`--- node A rules ---\n${before.nodeA.states}\n${before.nodeA.policies}\n--- node B rules ---\n${before.nodeB.states}\n${before.nodeB.policies}\n`)
const count = (text, re) => (text.match(re) ?? []).length
check(count(before.nodeA.states, /^src /gm) === 2 && count(before.nodeB.states, /^src /gm) === 2, 'each node has an IN and an OUT ESP state')
check(count(before.nodeA.policies, /^src /gm) === 3 && count(before.nodeB.policies, /^src /gm) === 3, 'each node has IN, FWD and OUT policies')
check(/dir out[\s\S]*mark 0xe0/.test(before.nodeA.policies) && /dir in[\s\S]*mark 0xd0/.test(before.nodeA.policies), 'OUT policy mark 0xe0, IN policy mark 0xd0')
const filters = inNs('nodeA', 'tc filter show dev vpa ingress; echo ==; tc filter show dev nA ingress').split('==')
check(filters[0].includes('tc_mark_encrypt') && filters[1].includes('tc_mark_decrypt'), 'tc programs attached (encrypt on the pod veth, decrypt on the NIC)')

/** Packets/bytes of every ESP state of a node, from our own netlink dump via `ip -s xfrm state`. */
const espCounters = (ns) => {
  const out = inNs(ns, 'ip -s xfrm state')
  const res = []
  for (const block of out.split(/^(?=src )/m).filter((s) => s.startsWith('src '))) {
    const [, src, dst] = /^src (\S+) dst (\S+)/.exec(block)
    const spi = parseInt(/spi (0x[0-9a-f]+)/.exec(block)[1], 16)
    const m = /(\d+)\(bytes\), (\d+)\(packets\)/.exec(block)
    res.push({ src, dst, spi, bytes: Number(m[1]), packets: Number(m[2]) })
  }
  return res
}
const xfrmStat = (ns, name) => Number(new RegExp(`${name}\\s+(\\d+)`).exec(inNs(ns, 'cat /proc/net/xfrm_stat'))?.[1] ?? NaN)

// --- a TCP connection between the pods, kept open across a key rotation -------------------------------------------
const LINES = 40
const server = spawn('nsenter', ['--net=/run/netns/podB', process.execPath, '-e', `
  let got = ''; const srv = require('node:net').createServer((s) => { s.on('data', (d) => { got += d; s.write('ack\\n') }); s.on('end', () => { process.stdout.write('RECEIVED ' + got.split('\\n').filter(Boolean).length + ' ' + (got.split('\\n').filter(Boolean).every((l, i) => l === 'line' + i) ? 'in-order' : 'out-of-order') + '\\n'); srv.close() }) })
  srv.listen(8080, '10.244.2.10', () => process.stdout.write('LISTENING\\n'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
let serverOut = ''
server.stdout.on('data', (d) => { serverOut += d })
const waitFor = async (what, pred, ms = 60000) => { const end = Date.now() + ms; while (!pred()) { if (Date.now() > end) throw new Error(`timed out waiting for ${what}`); await sleep(50) } }
await waitFor('the server', () => serverOut.includes('LISTENING'))
const client = spawn('nsenter', ['--net=/run/netns/podA', process.execPath, '-e', `
  const s = require('node:net').connect(8080, '10.244.2.10'); let i = 0; let acks = 0
  s.on('connect', () => { process.stdout.write('CONNECTED\\n'); const tick = () => { s.write('line' + i++ + '\\n'); if (i < ${LINES}) setTimeout(tick, 100); else setTimeout(() => s.end(), 300) }; tick() })
  s.on('data', (d) => { acks += String(d).split('\\n').filter(Boolean).length }); s.on('close', () => process.stdout.write('CLOSED acks ' + acks + '\\n')); s.on('error', (e) => process.stdout.write('ERROR ' + e.code + '\\n'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
let clientOut = ''
client.stdout.on('data', (d) => { clientOut += d })
await waitFor('the client to connect', () => clientOut.includes('CONNECTED') || clientOut.includes('ERROR'))
say(`pod A connected to pod B: ${clientOut.trim()}`)
await sleep(800)
const beforeRotation = { nodeA: espCounters('nodeA'), nodeB: espCounters('nodeB') }
say(`ESP before rotation: ${JSON.stringify(beforeRotation)}`)
check(beforeRotation.nodeA.every((s) => s.packets > 0) && beforeRotation.nodeB.every((s) => s.packets > 0), 'both directions of the TCP connection go through ESP (IN and OUT states count packets on both nodes)')

// --- key rotation: a new SPI and key in the watched file, mid-connection ----------------------------------------
writeKey(2, 0x22)
say('key file rotated to SPI 2')
await waitFor('both nodes to move to SPI 2', () => {
  const spis = [...a.installed.states.values(), ...b.installed.states.values()].map((s) => s.spi)
  return a.local.spi === 2 && b.local.spi === 2 && spis.length === 4 && spis.every((s) => s === 2)
}, 30000)
say('both nodes re-derived their rules with SPI 2')
await waitFor('the client to finish', () => clientOut.includes('CLOSED') || clientOut.includes('ERROR'), 60000)
await waitFor('the server report', () => serverOut.includes('RECEIVED'), 10000)
const afterRotation = { nodeA: espCounters('nodeA'), nodeB: espCounters('nodeB') }
say(`ESP after rotation: ${JSON.stringify(afterRotation)}`)
check(/RECEIVED 40 in-order/.test(serverOut) && /CLOSED acks \d+/.test(clientOut) && !clientOut.includes('ERROR'), `the TCP connection survived the rotation (${serverOut.trim()}; ${clientOut.trim().split('\n').pop()})`)
check(afterRotation.nodeA.every((s) => s.spi === 2 && s.packets > 0) && afterRotation.nodeB.every((s) => s.spi === 2 && s.packets > 0), 'after the rotation the SPI 2 states carry the traffic')
const rulesRotated = { nodeA: rules('nodeA') }

// --- traffic that did not come through XFRM is not accepted as if it had ------------------------------------------
// A plaintext packet to node B's pods that claims to be decrypted (mark 0xd0, forged by a tc filter ahead of ours on
// B's NIC) meets the IN/FWD policy's ESP template without a security path and is dropped (XfrmInTmplMismatch).
// The sender is node A itself (not a pod behind a marking veth), so its packets leave in the clear.
const ping = (ns, dst) => { try { inNs(ns, `busybox ping -c 1 -W 2 ${dst}`); return true } catch { return false } }
check(ping('nodeA', '10.244.2.10'), 'control: an unmarked plaintext ping from node A to pod B is answered (Kmesh clears foreign marks and lets plaintext through)')
const mismatch0 = xfrmStat('nodeB', 'XfrmInTmplMismatch')
inNs('nodeB', 'tc filter add dev nB ingress prio 1 matchall action skbedit mark 0xd0 continue')
const forgedAnswered = ping('nodeA', '10.244.2.10')
const mismatch1 = xfrmStat('nodeB', 'XfrmInTmplMismatch')
inNs('nodeB', 'tc filter del dev nB ingress prio 1')
check(!forgedAnswered && mismatch1 > mismatch0, `plaintext marked 0xd0 without ESP is dropped by the policy (XfrmInTmplMismatch ${mismatch0} -> ${mismatch1})`)

// --- a node disappears, then shutdown removes everything ----------------------------------------------------------
b.close()
a.reconcile()
const afterRemoval = rules('nodeA')
check(afterRemoval.states === '' && afterRemoval.policies === '' && a.installed.cidrs.size === 0, 'node B gone: node A removed every state, policy and LPM entry for it')
check(rules('nodeB').states === '' && rules('nodeB').policies === '' && !inNs('nodeB', 'tc filter show dev vpb ingress').includes('tc_mark'), 'node B shut down: its rules and tc filters are gone')
a.close()
check(!inNs('nodeA', 'tc filter show dev nA ingress').includes('tc_mark') && sh('ls /sys/fs/bpf').split('\n').every((n) => !n.startsWith('kmesh-vm-') || sh(`find /sys/fs/bpf/${n} -type f`).trim() === ''), 'node A shut down: tc filters and pins gone')

const result = { failures, before, beforeRotation, afterRotation, rulesRotated, mismatch: [mismatch0, mismatch1], seconds: (Date.now() - t0) / 1000 }
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
for (const ns of ['nodeA', 'nodeB', 'podA', 'podB']) sh(`ip netns del ${ns}`)
process.exit(failures.length ? 1 : 0)
