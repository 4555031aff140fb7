/**
 * The IPsec tc programs (src/tc_mark.c, docs/reference/kmesh-dataplane.md §1.10, §4.4):
 *  1. BPF_PROG_TEST_RUN on frames this test builds, with skb->mark given and read back through the __sk_buff
 *     context: mark set / kept / cleared, return code TC_ACT_OK, packet bytes untouched;
 *  2. attached with tc to a veth between two network namespaces this test creates, the marks observed by iptables
 *     mangle/PREROUTING counters (tc ingress runs before netfilter).
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { privilegedSkip, tempNetns, tempPinDir } from '@kmesh-ts/testkit'
import { Collection, encodeToBuffer, lpmKey, lpmKeyOfCidr, u32Value, type BpfProgram } from '@kmesh-ts/bpf-maps'
import { ipsecMarks, mapNames, objectPath, programs } from '../src/index.js'

const TC_ACT_OK = 0
const SKB_SIZE = 192 // sizeof(struct __sk_buff), linux/bpf.h
const SKB_MARK = 8 // offsetof(struct __sk_buff, mark)
const PROTO = { tcp: 6, esp: 50, icmp: 1 }

function ipv4(src: string, dst: string, proto: number, payload = 20): Buffer {
  const h = Buffer.alloc(20 + payload)
  h[0] = 0x45
  h.writeUInt16BE(20 + payload, 2)
  h[8] = 64
  h[9] = proto
  Buffer.from(src.split('.').map(Number)).copy(h, 12)
  Buffer.from(dst.split('.').map(Number)).copy(h, 16)
  return h
}
function ipv6(src: string, dst: string, nextHeader: number, payload = 20): Buffer {
  const h = Buffer.alloc(40 + payload)
  h[0] = 0x60
  h.writeUInt16BE(payload, 4)
  h[6] = nextHeader
  h[7] = 64
  v6(src).copy(h, 8)
  v6(dst).copy(h, 24)
  return h
}
function v6(text: string): Buffer {
  const [head = '', tail = ''] = text.split('::')
  const hs = head ? head.split(':') : []
  const ts = tail ? tail.split(':') : []
  const groups = [...hs, ...Array(8 - hs.length - ts.length).fill('0'), ...ts]
  const b = Buffer.alloc(16)
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2))
  return b
}
function frame(etherType: number, l3: Buffer): Buffer {
  const eth = Buffer.alloc(14)
  Buffer.from('020000000002', 'hex').copy(eth, 0)
  Buffer.from('020000000001', 'hex').copy(eth, 6)
  eth.writeUInt16BE(etherType, 12)
  return Buffer.concat([eth, l3])
}
const v4Frame = (dst: string, proto = PROTO.tcp) => frame(0x0800, ipv4('10.244.1.5', dst, proto))
const v6Frame = (dst: string, nh = PROTO.tcp) => frame(0x86dd, ipv6('fd00:1::5', dst, nh))
const arpFrame = () => frame(0x0806, Buffer.alloc(28))

/** Runs the program on one frame with skb->mark = mark; returns the mark it left and checks the rest. */
function run(t: Tap.Test, prog: BpfProgram, data: Buffer, mark: number): number {
  const ctxIn = Buffer.alloc(SKB_SIZE)
  ctxIn.writeUInt32LE(mark, SKB_MARK)
  const r = prog.testRun({ dataIn: data, dataOutSize: data.length + 64, ctxIn, ctxOutSize: SKB_SIZE })
  t.equal(r.retval, TC_ACT_OK, 'TC_ACT_OK: the program never drops')
  t.ok(r.dataOut?.equals(data), 'the packet bytes are untouched')
  return r.ctxOut!.readUInt32LE(SKB_MARK)
}

t.test(
  'BPF_PROG_TEST_RUN on crafted frames',
  {
    skip: privilegedSkip(
      'BPF_PROG_TEST_RUN of BPF_PROG_TYPE_SCHED_CLS with an __sk_buff context (kernel >= 5.2) and BPF_MAP_TYPE_LPM_TRIE',
    ),
  },
  async (t) => {
    const coll = Collection.load({ objectPath: objectPath('tc_mark'), pinMaps: false })
    t.teardown(() => coll.close())
    const nodeInfo = coll.map(mapNames.nodeInfo).typed(lpmKey, u32Value)
    nodeInfo.put(lpmKeyOfCidr('10.244.2.0/24'), 1)
    nodeInfo.put(lpmKeyOfCidr('fd00:2::/64'), 1)
    const encrypt = coll.program(programs.tcMarkEncrypt.name)
    const decrypt = coll.program(programs.tcMarkDecrypt.name)
    const { encrypt: E, decrypt: D } = ipsecMarks

    t.test('tc_mark_encrypt: a remote pod destination gets 0xe0, anything else keeps its mark', async (t) => {
      t.equal(run(t, encrypt, v4Frame('10.244.2.7'), 0), E, 'v4 hit (/32 lookup inside the /24): mark set')
      t.equal(run(t, encrypt, v4Frame('10.244.2.7'), 0x55), E, 'a hit overwrites any mark')
      t.equal(run(t, encrypt, v4Frame('10.244.2.7', PROTO.esp), 0), E, 'no L4 filter')
      t.equal(run(t, encrypt, v4Frame('10.244.3.7'), 0x55), 0x55, 'v4 miss: mark left alone')
      t.equal(run(t, encrypt, v4Frame('10.244.3.7'), 0), 0)
      t.equal(run(t, encrypt, v6Frame('fd00:2::7'), 0), E, 'v6 hit (/128 lookup)')
      t.equal(run(t, encrypt, v6Frame('fd00:3::7'), 0x9), 0x9, 'v6 miss')
      t.equal(run(t, encrypt, arpFrame(), 0x9), 0x9, 'not IP: untouched')
      // (A frame with a truncated IPv4 header cannot be tested here: the kernel refuses it with EINVAL.)
      nodeInfo.delete(lpmKeyOfCidr('10.244.2.0/24'))
      t.equal(run(t, encrypt, v4Frame('10.244.2.7'), 0), 0, 'after the CIDR is removed: miss')
      nodeInfo.put(lpmKeyOfCidr('10.244.2.0/24'), 1)
    })

    t.test('tc_mark_decrypt: ESP and 0xd0 kept, every other mark cleared', async (t) => {
      t.equal(run(t, decrypt, v4Frame('10.244.1.9'), 0xa0), 0, 'case 1: v4 TCP with a foreign mark: cleared')
      t.equal(run(t, decrypt, v4Frame('10.244.1.9'), E), 0, 'even 0xe0 is cleared on NIC ingress')
      t.equal(run(t, decrypt, v4Frame('10.244.1.9'), D), D, 'case 2: 0xd0 (decrypted by XFRM) kept')
      t.equal(run(t, decrypt, v4Frame('192.168.0.1', PROTO.esp), D), D, 'case 3: ESP with 0xd0 kept')
      t.equal(run(t, decrypt, v4Frame('192.168.0.1', PROTO.esp), 0xa0), 0xa0, 'ESP is never touched')
      t.equal(run(t, decrypt, v6Frame('fd00:1::9', PROTO.esp), 0xa0), 0xa0, 'v6 ESP (next header 50) untouched')
      t.equal(run(t, decrypt, v6Frame('fd00:1::9'), 0x7), 0, 'v6 TCP: cleared')
      t.equal(run(t, decrypt, v6Frame('fd00:1::9'), D), D, 'v6 0xd0 kept')
      t.equal(run(t, decrypt, arpFrame(), 0x7), 0x7, 'not IP: untouched')
    })
  },
)

/** Packets counted by the iptables mangle/PREROUTING rule whose comment is `tag`. */
function counted(ns: { exec(cmd: string[]): string }, tag: string): number {
  const out = ns.exec(['iptables', '-w', '-t', 'mangle', '-L', 'PREROUTING', '-v', '-x', '-n'])
  const line = out.split('\n').find((l) => l.includes(`/* ${tag} */`))
  if (!line) throw new Error(`no iptables rule ${tag} in\n${out}`)
  return Number(line.trim().split(/\s+/)[0])
}

t.test(
  'on a veth between two namespaces, attached with tc',
  {
    skip: privilegedSkip(
      'tc clsact with a direct-action BPF_PROG_TYPE_SCHED_CLS filter (kernel >= 4.5), veth pairs in network namespaces, iptables mangle',
      () => hasTools(['tc', 'iptables', 'python3']),
    ),
  },
  async (t) => {
    const pins = tempPinDir()
    t.teardown(() => pins.close())
    const pod = tempNetns()
    t.teardown(() => pod.close())
    const host = tempNetns()
    t.teardown(() => host.close())
    const coll = Collection.load({ objectPath: objectPath('tc_mark'), pinMaps: false })
    t.teardown(() => coll.close())
    coll.map(mapNames.nodeInfo).put(encodeToBuffer(lpmKey, lpmKeyOfCidr('10.244.2.0/24')), encodeToBuffer(u32Value, 1))
    const encPin = join(pins.path, 'enc')
    const decPin = join(pins.path, 'dec')
    coll.program(programs.tcMarkEncrypt.name).pin(encPin)
    coll.program(programs.tcMarkDecrypt.name).pin(decPin)

    // pod (10.99.0.1, eth0) ── veth ── host (10.99.0.2, vpod): the pod routes the remote pod CIDRs via the host.
    execFileSync('ip', [
      'link',
      'add',
      'eth0',
      'netns',
      pod.name,
      'type',
      'veth',
      'peer',
      'name',
      'vpod',
      'netns',
      host.name,
    ])
    pod.exec([
      'sh',
      '-c',
      'ip addr add 10.99.0.1/24 dev eth0 && ip link set eth0 up && ip link set lo up && ip route add 10.244.0.0/16 via 10.99.0.2',
    ])
    host.exec([
      'sh',
      '-c',
      'ip addr add 10.99.0.2/24 dev vpod && ip link set vpod up && ip link set lo up && tc qdisc add dev vpod clsact',
    ])
    const rule = (tag: string, match: string[]) =>
      host.exec([
        'iptables',
        '-w',
        '-t',
        'mangle',
        '-A',
        'PREROUTING',
        '-i',
        'vpod',
        ...match,
        '-m',
        'comment',
        '--comment',
        tag,
        '-j',
        'ACCEPT',
      ])
    rule('remote-marked', ['-p', 'udp', '-d', '10.244.2.0/24', '-m', 'mark', '--mark', '0xe0'])
    rule('other-unmarked', ['-p', 'udp', '-d', '10.244.3.0/24', '-m', 'mark', '--mark', '0'])
    // Three UDP datagrams from the pod (nobody listens: only the marks matter).
    const ping = (dst: string) =>
      pod.exec([
        process.execPath,
        '-e',
        `const s = require('node:dgram').createSocket('udp4'); let n = 0; const send = () => s.send('x', 9, '${dst}', () => (++n < 3 ? send() : s.close())); send()`,
      ])

    host.exec(['tc', 'filter', 'add', 'dev', 'vpod', 'ingress', 'prio', '1', 'bpf', 'object-pinned', encPin, 'da'])
    ping('10.244.2.5')
    ping('10.244.3.5')
    t.equal(counted(host, 'remote-marked'), 3, 'tc_mark_encrypt: packets to a remote pod CIDR carry 0xe0 in PREROUTING')
    t.equal(counted(host, 'other-unmarked'), 3, 'packets elsewhere stay unmarked')

    // Decrypt on "NIC" ingress: a first filter (harness/tc_forge_mark.c) forges a mark, ours runs second.
    const work = mkdtempSync(join(tmpdir(), 'kmesh-tc-forge-'))
    t.teardown(() => rmSync(work, { recursive: true, force: true }))
    const forgeObj = join(work, 'tc_forge_mark.o')
    execFileSync(process.env.CLANG ?? 'clang', [
      '-target',
      'bpf',
      '-O2',
      '-g',
      '-I/usr/include/x86_64-linux-gnu',
      '-c',
      fileURLToPath(new URL('./harness/tc_forge_mark.c', import.meta.url)),
      '-o',
      forgeObj,
    ])
    const forger = Collection.load({ objectPath: forgeObj, pinMaps: false })
    t.teardown(() => forger.close())
    const forgePin = join(pins.path, 'forge')
    forger.program('tc_forge_mark').pin(forgePin)
    host.exec(['tc', 'filter', 'del', 'dev', 'vpod', 'ingress'])
    host.exec(['tc', 'filter', 'add', 'dev', 'vpod', 'ingress', 'prio', '1', 'bpf', 'object-pinned', forgePin, 'da'])
    host.exec(['tc', 'filter', 'add', 'dev', 'vpod', 'ingress', 'prio', '2', 'bpf', 'object-pinned', decPin, 'da'])
    host.exec(['iptables', '-w', '-t', 'mangle', '-F', 'PREROUTING'])
    rule('udp-cleared', ['-p', 'udp', '-m', 'mark', '--mark', '0'])
    rule('udp-d0-kept', ['-p', 'udp', '-m', 'mark', '--mark', '0xd0'])
    rule('esp-kept', ['-p', 'esp', '-m', 'mark', '--mark', '0xa0'])
    const forge = (mark: number) => forger.map('forge_mark').put(Buffer.alloc(4), encodeToBuffer(u32Value, mark))
    forge(0xa0)
    ping('10.99.0.2')
    // Three raw ESP datagrams (protocol 50) from the pod: not decryptable here, but they must keep their mark.
    pod.exec([
      'python3',
      '-c',
      "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_RAW,50)\nfor i in range(3): s.sendto(b'\\0\\0\\0\\x07'+bytes(28),('10.99.0.2',0))",
    ])
    forge(0xd0)
    ping('10.99.0.2')
    t.equal(counted(host, 'udp-cleared'), 3, 'tc_mark_decrypt: a forged mark on plain traffic is cleared')
    t.equal(counted(host, 'esp-kept'), 3, 'ESP keeps its mark')
    t.equal(counted(host, 'udp-d0-kept'), 3, '0xd0 is kept')
  },
)

function hasTools(tools: string[]): string | undefined {
  for (const tool of tools) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' })
    } catch {
      return `${tool} is not installed`
    }
  }
  return undefined
}
