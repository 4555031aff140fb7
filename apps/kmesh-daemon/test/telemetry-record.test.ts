/**
 * From the kernel's conn_record bytes to the daemon's ConnectionRecord, without a kernel: the codec round-trips,
 * v4-mapped addresses are shown as IPv4, monotonic nanoseconds become wall-clock milliseconds, and the mesh lookup
 * labels the source workload, the destination workload and the service of the VIP dialled.
 */
import t from 'tap'
import { connRecord, encodeRecord, type ConnRecord } from '@kmesh-ts/bpf-maps/codecs'
import { TELEMETRY_DIR_INBOUND, TELEMETRY_DIR_OUTBOUND } from '@kmesh-ts/kernel-abi'
import { toConnectionRecord, unmapV4, type MeshLookup } from '../src/telemetry/enrich.js'
import type { Service, Workload } from '../src/model/index.js'

const raw: ConnRecord = {
  atNs: 5_000_000_000n,
  durationNs: 1_500_000n,
  bytesSent: 3000n,
  bytesReceived: 5000n,
  srttUs: 90,
  minRttUs: 30,
  totalRetrans: 2,
  lostOut: 1,
  family: 6,
  src: '::ffff:10.0.0.5',
  srcPort: 40000,
  dst: '::ffff:10.0.1.7',
  dstPort: 8080,
  originalDst: '::ffff:10.96.0.10',
  originalPort: 80,
  event: 'close',
  direction: TELEMETRY_DIR_OUTBOUND,
}

const workload = (uid: string, name: string) => ({ uid, name, namespace: 'ns' }) as unknown as Workload
const service = { name: 'web', namespace: 'ns', hostname: 'web.ns.svc.cluster.local' } as unknown as Service
const mesh: MeshLookup = {
  lookupIp: (ip) => ({
    workloads:
      ip === '10.0.0.5' ? [workload('u-client', 'client')] : ip === '10.0.1.7' ? [workload('u-web', 'web-0')] : [],
    services: ip === '10.96.0.10' ? [service] : [],
  }),
}

t.test('the codec round-trips a record byte for byte', async (t) => {
  const bytes = encodeRecord(connRecord, raw)
  t.equal(bytes.length, 112)
  t.same(connRecord.decode(bytes), raw)
  const v4: ConnRecord = {
    ...raw,
    family: 4,
    src: '10.0.0.5',
    dst: '10.0.1.7',
    originalDst: undefined,
    originalPort: undefined,
  }
  delete v4.originalDst
  delete v4.originalPort
  t.same(connRecord.decode(encodeRecord(connRecord, v4)), v4, 'IPv4, not rewritten')
})

t.test('enrichment: addresses, times, labels', async (t) => {
  const r = toConnectionRecord(raw, 1_000, mesh)
  t.same(r.src, { ip: '10.0.0.5', port: 40000 }, 'v4-mapped source shown as IPv4')
  t.same(r.dst, { ip: '10.0.1.7', port: 8080 })
  t.same(r.originalDst, { ip: '10.96.0.10', port: 80 })
  t.equal(r.at, 6_000, 'monotonic 5 s + the clocks offset')
  t.equal(r.durationMs, 1.5)
  t.same([r.bytesSent, r.bytesReceived, r.srttUs, r.minRttUs, r.retransmits, r.packetLoss], [3000, 5000, 90, 30, 2, 1])
  t.equal(r.direction, 'outbound')
  t.same(r.srcWorkload, { uid: 'u-client', name: 'client', namespace: 'ns' })
  t.same(r.dstWorkload, { uid: 'u-web', name: 'web-0', namespace: 'ns' })
  t.same(r.dstService, { name: 'web', namespace: 'ns', hostname: 'web.ns.svc.cluster.local' }, 'the VIP dialled')
  const inbound = toConnectionRecord({ ...raw, direction: TELEMETRY_DIR_INBOUND }, 0, undefined)
  t.equal(inbound.direction, 'inbound')
  t.equal(inbound.srcWorkload, undefined, 'no mesh: no labels')
  t.equal(unmapV4('::ffff:1.2.3.4'), '1.2.3.4')
  t.equal(unmapV4('::ffff:abcd'), '::ffff:abcd', 'only the dotted form is a mapped IPv4 address')
  t.equal(unmapV4('fd00::1'), 'fd00::1')
})
