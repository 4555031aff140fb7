/**
 * Per-peer inbound marks (include/ipsec.h IPSEC_MARK_PEER, src/tc_mark.c tc_mark_decrypt): ESP whose outer source is
 * a known peer (km_ipsec_peer, exact match keyed by `struct lpm_key` /32 or /128) gets the mark the map holds for it,
 * which selects that peer's own XFRM IN state; every other case keeps the behaviour of Kmesh's program.
 * BPF_PROG_TEST_RUN on frames this test builds, skb->mark given and read back through the __sk_buff context.
 */
import t from 'tap'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { Collection, lpmKey, u32Value, type BpfProgram } from '@kmesh-ts/bpf-maps'
import { IPSEC_MARK_PEER, IPSEC_MARK_PEER_MASK, IPSEC_PEER_ID_SHIFT, BPF_MAPS } from '@kmesh-ts/kernel-abi'
import { ipsecMarks, mapNames, objectMaps, objectPath, programs } from '../src/index.js'

const TC_ACT_OK = 0
const SKB_SIZE = 192 // sizeof(struct __sk_buff)
const SKB_MARK = 8 // offsetof(struct __sk_buff, mark)
const ESP = 50
const TCP = 6

function v6(text: string): Buffer {
  const [head = '', tail = ''] = text.split('::')
  const hs = head ? head.split(':') : []
  const ts = tail ? tail.split(':') : []
  const groups = [...hs, ...Array(8 - hs.length - ts.length).fill('0'), ...ts]
  const b = Buffer.alloc(16)
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2))
  return b
}
function eth(etherType: number, l3: Buffer): Buffer {
  const h = Buffer.alloc(14)
  h.writeUInt16BE(etherType, 12)
  return Buffer.concat([h, l3])
}
function v4Frame(src: string, dst: string, proto: number): Buffer {
  const h = Buffer.alloc(40)
  h[0] = 0x45
  h.writeUInt16BE(40, 2)
  h[8] = 64
  h[9] = proto
  Buffer.from(src.split('.').map(Number)).copy(h, 12)
  Buffer.from(dst.split('.').map(Number)).copy(h, 16)
  return eth(0x0800, h)
}
function v6Frame(src: string, dst: string, nextHeader: number): Buffer {
  const h = Buffer.alloc(60)
  h[0] = 0x60
  h.writeUInt16BE(20, 4)
  h[6] = nextHeader
  h[7] = 64
  v6(src).copy(h, 8)
  v6(dst).copy(h, 24)
  return eth(0x86dd, h)
}

function run(t: Tap.Test, prog: BpfProgram, data: Buffer, mark: number): number {
  const ctxIn = Buffer.alloc(SKB_SIZE)
  ctxIn.writeUInt32LE(mark, SKB_MARK)
  const r = prog.testRun({ dataIn: data, dataOutSize: data.length + 64, ctxIn, ctxOutSize: SKB_SIZE })
  t.equal(r.retval, TC_ACT_OK, 'TC_ACT_OK')
  t.ok(r.dataOut?.equals(data), 'packet bytes untouched')
  return r.ctxOut!.readUInt32LE(SKB_MARK) >>> 0
}

const peerMark = (id: number) => ((id << IPSEC_PEER_ID_SHIFT) | IPSEC_MARK_PEER) >>> 0

t.test('the peers map is declared by tc_mark.o only, with its generated size', async (t) => {
  t.ok(objectMaps.tc_mark.includes(mapNames.ipsecPeer), 'tc_mark declares km_ipsec_peer')
  t.equal(BPF_MAPS.km_ipsec_peer.maxEntries, 8192)
  t.equal((peerMark(0xffff) & IPSEC_MARK_PEER_MASK) >>> 0, peerMark(0xffff), 'the largest id fits the mask')
  t.not(peerMark(1) & 0xff, ipsecMarks.decrypt, 'a peer mark is never the decrypted mark')
  t.not(peerMark(1) & 0xff, ipsecMarks.encrypt, 'nor the encrypt mark')
})

t.test(
  'tc_mark_decrypt gives ESP from a known peer its mark',
  {
    skip: privilegedSkip(
      'BPF_PROG_TEST_RUN of BPF_PROG_TYPE_SCHED_CLS with an __sk_buff context (kernel >= 5.2) and BPF_MAP_TYPE_HASH',
    ),
  },
  async (t) => {
    const coll = Collection.load({ objectPath: objectPath('tc_mark'), pinMaps: false })
    t.teardown(() => coll.close())
    const peers = coll.map(mapNames.ipsecPeer).typed(lpmKey, u32Value)
    const decrypt = coll.program(programs.tcMarkDecrypt.name)
    const D = ipsecMarks.decrypt
    peers.put({ prefixLen: 32, address: '192.168.77.2' }, peerMark(1))
    peers.put({ prefixLen: 32, address: '192.168.77.3' }, peerMark(2))
    peers.put({ prefixLen: 128, address: 'fd00:77::3' }, peerMark(2))

    t.equal(run(t, decrypt, v4Frame('192.168.77.2', '192.168.77.1', ESP), 0), peerMark(1), 'ESP from peer 1')
    t.equal(run(t, decrypt, v4Frame('192.168.77.3', '192.168.77.1', ESP), 0), peerMark(2), 'ESP from peer 2')
    t.equal(
      run(t, decrypt, v4Frame('192.168.77.3', '192.168.77.1', ESP), 0x5a),
      peerMark(2),
      'a foreign mark is replaced',
    )
    t.equal(run(t, decrypt, v6Frame('fd00:77::3', 'fd00:77::1', ESP), 0), peerMark(2), 'v6 ESP from peer 2')
    t.equal(
      run(t, decrypt, v4Frame('192.168.77.9', '192.168.77.1', ESP), 0x5a),
      0x5a,
      'ESP from an unknown source: untouched, as Kmesh leaves all ESP',
    )
    // c0a8:4d02:: starts with the bytes of 192.168.77.2: the prefix length in the key keeps the families apart.
    t.equal(run(t, decrypt, v6Frame('c0a8:4d02::', 'fd00:77::1', ESP), 0), 0, 'no v4/v6 confusion')
    t.equal(run(t, decrypt, v4Frame('192.168.77.2', '10.244.1.5', TCP), 0x5a), 0, 'plaintext from a peer: cleared')
    t.equal(run(t, decrypt, v4Frame('192.168.77.2', '10.244.1.5', TCP), D), D, 'decrypted (0xd0): kept')
    t.equal(
      run(t, decrypt, v4Frame('192.168.77.2', '10.244.1.5', TCP), peerMark(1)),
      0,
      'a peer mark on plaintext is cleared (only ESP gets one)',
    )
    peers.delete({ prefixLen: 32, address: '192.168.77.2' })
    t.equal(run(t, decrypt, v4Frame('192.168.77.2', '192.168.77.1', ESP), 0), 0, 'peer removed: no mark')
  },
)
