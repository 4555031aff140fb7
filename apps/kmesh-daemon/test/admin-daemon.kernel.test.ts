/**
 * The observability surface of a real daemon: a connection from the managed cgroup through a VIP moves Kmesh's
 * kmesh_tcp_* metrics by exactly the bytes the client sent and received and writes one access-log line; the config
 * dump lists the mesh; /debug/bpf decodes the pinned maps (also as a bare directory of pins, as a Kmesh node has
 * them); a refused mesh file shows in the dump, the readiness reason and the metrics.
 * Addresses (helper tag "adm"): VIP 127.10.43.1, backend 127.0.43.11.
 */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { BpfMap } from '@kmesh-ts/bpf-maps'
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { meshHarness, meshYaml } from './support/mesh-harness.js'
import { exchangeFrom, exchangeServer } from './support/tcp-exchange.js'

const skip = privilegedSkip(
  'cgroup connect4 and sockops attached by BPF links, a BPF ring buffer (kernel >= 5.15), cgroup v2 and bpffs',
)

interface Family {
  name: string
  metrics: Array<{ value?: string; labels?: Record<string, string> }>
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 5000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

const MESH = meshYaml(
  [{ name: 'adm-backend', ip: '127.0.43.11', services: { 'adm-svc': { 80: 18043 } } }],
  [{ name: 'adm-svc', vips: ['127.10.43.1'], ports: { 80: 18043 } }],
)
const HOST = 'adm-svc.t.svc.cluster.local'

t.test('metrics, access log, config dump and decoded maps of a running daemon', { skip }, async (t) => {
  const h = await meshHarness(t)
  const server = await exchangeServer('127.0.43.11', 18043, 7000)
  t.teardown(() => server.close())
  h.writeMesh(MESH)
  const accessLines: string[] = []
  const daemon = await h.start({
    adminAddress: '127.0.0.1:0',
    metricsAddress: '127.0.0.1:0',
    accessLog: 'text',
    accessLogOut: { write: (s: string) => accessLines.push(s) },
  })
  t.ok(daemon.metrics, 'the metrics listener started')
  const scrape = async (): Promise<Map<string, Family>> => {
    const text = await (await fetch(`${daemon.metrics!.url}/stats/prometheus`)).text()
    return new Map((parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f]))
  }
  const serviceValue = (fams: Map<string, Family>, name: string): number | undefined => {
    const m = fams.get(name)?.metrics.find((x) => x.labels?.destination_service === HOST)
    return m ? Number(m.value) : undefined
  }

  const c = await exchangeFrom({ cgroupPath: h.cgroup }, '127.10.43.1', 80, 3000)
  t.equal(c.received, 7000, 'the client got the reply through the VIP')
  const line = await until('the access-log line', () =>
    accessLines.find((l) => l.includes(`src.addr=127.0.0.1:${c.localPort},`)),
  )
  t.match(
    line,
    new RegExp(
      `^accesslog: \\S+Z src\\.addr=127\\.0\\.0\\.1:${c.localPort}, src\\.workload=-, src\\.namespace=-, ` +
        `dst\\.addr=127\\.0\\.43\\.11:18043, dst\\.service=${HOST.replaceAll('.', '\\.')}, dst\\.workload=adm-backend, ` +
        `dst\\.namespace=t, start_time=\\S+Z, direction=OUTBOUND, sent_bytes=${c.sent}, received_bytes=${c.received}, ` +
        'packet_loss=0, retransmissions=0, srtt=\\d+us, min_rtt=\\d+us, duration=[\\d.]+ms\\n$',
    ),
    'one Kmesh access-log line with the exact byte counts',
  )

  const fams = await until('the closed connection in the metrics', async () => {
    const f = await scrape()
    return serviceValue(f, 'kmesh_tcp_connections_closed_total') ? f : undefined
  })
  t.equal(serviceValue(fams, 'kmesh_tcp_connections_opened_total'), 1, 'one connection opened to the service')
  t.equal(serviceValue(fams, 'kmesh_tcp_connections_closed_total'), 1, 'and closed')
  t.equal(serviceValue(fams, 'kmesh_tcp_sent_bytes_total'), c.sent, `sent bytes = what the client sent (${c.sent})`)
  t.equal(serviceValue(fams, 'kmesh_tcp_received_bytes_total'), c.received, 'received bytes = what it received')
  const wl = fams
    .get('kmesh_tcp_workload_sent_bytes_total')!
    .metrics.find((m) => m.labels?.destination_pod_name === 'adm-backend')
  t.match(wl, { value: String(c.sent), labels: { reporter: 'source', destination_pod_address: '127.0.43.11' } })
  const frontend = fams.get('kmesh_map_entry_count')!.metrics.find((m) => m.labels?.map_name === 'km_frontend')
  t.ok(Number(frontend?.value) >= 1, `kmesh_map_entry_count{map_name="km_frontend"} = ${frontend?.value}`)
  t.equal(fams.get('kmesh_ts_ready')!.metrics[0]!.value, '1')
  t.same(
    fams.get('kmesh_ts_mesh_file_loads_total')!.metrics.map((m) => [m.labels!.outcome, m.value]),
    [['applied', '1']],
  )
  t.ok(fams.has('nodejs_eventloop_lag_seconds'), 'event-loop lag')

  // The config dump lists the mesh, the ids and the telemetry counters.
  const dump = (await (await fetch(`${daemon.admin!.url}/config_dump`)).json()) as {
    ready: boolean
    workloads: { total: number; items: Array<{ uid: string }> }
    services: { total: number; items: Array<{ hostname: string }> }
    ids: { total: number }
    telemetry: { records: number }
    accessLog: string
    mapStats: Record<string, { entries: number; capacity: number }>
  }
  t.equal(dump.ready, true)
  t.same(
    dump.workloads.items.map((w) => w.uid),
    ['c//v1/Pod/t/adm-backend'],
  )
  t.same(
    dump.services.items.map((s) => s.hostname),
    [HOST],
  )
  t.ok(dump.ids.total >= 2, `ids: ${dump.ids.total}`)
  t.ok(dump.telemetry.records >= 2, `telemetry records: ${dump.telemetry.records}`)
  t.equal(dump.accessLog, 'text')
  t.ok(dump.mapStats.km_frontend!.capacity > 0)

  // Every pinned map decoded; the same given the bare directory of pins (how Kmesh's pins are laid out).
  type BpfDump = { maps: Array<{ name: string; entries?: Array<{ key: { address?: string } }> }> }
  const bpf = (await (await fetch(`${daemon.admin!.url}/debug/bpf`)).json()) as BpfDump
  const vips = (d: BpfDump) => d.maps.find((m) => m.name === 'km_frontend')?.entries?.map((e) => e.key.address)
  t.ok(vips(bpf)?.includes('127.10.43.1'), 'km_frontend decoded: the VIP is a key')
  for (const name of ['km_service', 'km_endpoint', 'km_backend'])
    t.ok(bpf.maps.find((m) => m.name === name)?.entries?.length, `${name} decoded`)
  const other = (await (
    await fetch(`${daemon.admin!.url}/debug/bpf?pinRoot=${encodeURIComponent(join(h.pinRoot, 'maps'))}`)
  ).json()) as BpfDump
  t.same(vips(other), vips(bpf), 'another pin root given as a directory of pins reads the same')
  // Kmesh's layout: <root>/map/<name> (/sys/fs/bpf/bpf_kmesh_workload/map/km_frontend); the same maps pinned there.
  const kmeshRoot = join(h.pinRoot, '..', 'adm-kmesh-layout')
  mkdirSync(join(kmeshRoot, 'map'), { recursive: true })
  t.teardown(() => rmSync(kmeshRoot, { recursive: true, force: true }))
  for (const name of ['km_frontend', 'km_service', 'km_endpoint', 'km_backend']) {
    const m = BpfMap.openPinned(join(h.pinRoot, 'maps', name))
    m.pin(join(kmeshRoot, 'map', name))
    m.close()
  }
  const kmesh = (await (
    await fetch(`${daemon.admin!.url}/debug/bpf?pinRoot=${encodeURIComponent(kmeshRoot)}`)
  ).json()) as BpfDump & { mapDir: string }
  t.equal(kmesh.mapDir, join(kmeshRoot, 'map'), "Kmesh's map/ directory is found")
  t.same(vips(kmesh), vips(bpf), 'a Kmesh-layout pin root decodes the same records')
  t.equal((await fetch(`${daemon.admin!.url}/debug/bpf?pinRoot=/nonexistent-adm`)).status, 400)

  // A refused file: the last good state stays (ready), the dump and the metrics say so.
  h.writeMesh('workloads: [\n')
  await daemon.reload()
  t.equal((await fetch(`${daemon.admin!.url}/healthz/ready`)).status, 200, 'still ready: the last good state serves')
  const after = (await (await fetch(`${daemon.admin!.url}/config_dump?only=summary`)).json()) as {
    meshFile: { lastRefusal?: { reason: string } }
  }
  t.ok(after.meshFile.lastRefusal?.reason, `the dump names the refusal: ${after.meshFile.lastRefusal?.reason}`)
  const refused = await scrape()
  t.equal(refused.get('kmesh_ts_mesh_file_refused')!.metrics[0]!.value, '1')
})

t.test('a refused first mesh file: not ready, with the reason, until a good file is applied', { skip }, async (t) => {
  const h = await meshHarness(t)
  h.writeMesh('services: 3\n')
  await t.rejects(h.start({ adminAddress: '127.0.0.1:0', metricsAddress: '' }), /first mesh load failed/)
  const daemon = h.daemon!
  t.notOk(daemon.metrics, "metricsAddress '' starts no listener")
  for (const path of ['/healthz/ready', '/debug/ready']) {
    const res = await fetch(`${daemon.admin!.url}${path}`)
    t.equal(res.status, 503, `${path}: not ready`)
    t.match(await res.text(), new RegExp(`^not ready: mesh file ${h.meshFile.replaceAll('/', '\\/')} refused at `))
  }
  h.writeMesh(MESH)
  await daemon.reload()
  t.equal((await fetch(`${daemon.admin!.url}/healthz/ready`)).status, 200, 'ready once a good file is applied')
  t.equal(daemon.isReady(), true)
})

t.test('cluster mode: xDS metrics and the last NACK in the dump', { skip }, async (t) => {
  const { startTestXdsServer, ADDRESS_TYPE_URL } = await import('@kmesh-ts/xds-client/testing')
  const server = await startTestXdsServer()
  t.teardown(() => server.close())
  const h = await meshHarness(t)
  const ip = (s: string): Uint8Array => Uint8Array.from(s.split('.').map(Number))
  const svc = 't/adm-x.t.svc.cluster.local'
  const workload = (name: string, addr: string, services: string[]) => ({
    workload: {
      uid: `c//v1/Pod/t/${name}`,
      name,
      namespace: 't',
      addresses: [ip(addr)],
      services: Object.fromEntries(services.map((s) => [s, { ports: [{ servicePort: 80, targetPort: 18045 }] }])),
    },
  })
  server.setQuietly(ADDRESS_TYPE_URL, [
    {
      service: {
        name: 'adm-x',
        namespace: 't',
        hostname: 'adm-x.t.svc.cluster.local',
        addresses: [{ network: '', address: ip('127.10.43.3') }],
        ports: [{ servicePort: 80, targetPort: 18045 }],
      },
    },
    workload('x1', '127.0.43.31', [svc]),
  ])
  const daemon = await h.start({
    meshFile: undefined,
    xds: { address: server.address, insecure: true },
    adminAddress: '127.0.0.1:0',
    metricsAddress: '127.0.0.1:0',
  })
  const tooMany = Array.from({ length: 11 }, (_, i) => `t/s${i}.t.svc.cluster.local`)
  const [push] = server.upsertAddresses(workload('wide', '127.0.43.39', tooMany))
  t.notOk((await server.reply(push!)).ack, 'the push is NACKed')

  const text = await (await fetch(`${daemon.metrics!.url}/metrics`)).text()
  const fams = new Map((parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f]))
  const one = (name: string) => fams.get(name)?.metrics.find((m) => m.labels?.type === 'istio.workload.Address')
  t.equal(fams.get('kmesh_ts_xds_connected')!.metrics[0]!.value, '1', 'connected')
  t.equal(fams.get('kmesh_ts_xds_connects_total')!.metrics[0]!.value, '1', 'one stream opened')
  t.equal(one('kmesh_ts_xds_messages_total')?.value, '2', 'two responses: the first push and the NACKed one')
  t.ok(Number(one('kmesh_ts_xds_received_bytes_total')?.value) > 100, 'their bytes')
  t.equal(one('kmesh_ts_xds_acks_total')?.value, '1')
  t.match(one('kmesh_ts_xds_nacks_total'), {
    value: '1',
    labels: { reason: 'the workload belongs to N services, but the kernel backend record holds at most N' },
  })
  t.ok(fams.get('kmesh_ts_xds_apply_seconds'), 'apply times')

  const dump = (await (await fetch(`${daemon.admin!.url}/config_dump?only=summary`)).json()) as {
    xds: { connected: boolean; lastNack: { rejected: number; rejections: Array<{ name: string; reason: string }> } }
  }
  t.equal(dump.xds.connected, true)
  t.match(dump.xds.lastNack, {
    rejected: 1,
    rejections: [{ name: 'c//v1/Pod/t/wide', reason: /belongs to 11 services/ }],
  })
  t.equal((await fetch(`${daemon.admin!.url}/healthz/ready`)).status, 200, 'ready: the first push was applied')
})
