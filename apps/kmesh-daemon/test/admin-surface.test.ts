// The admin endpoint's paths with a fake daemon: readiness with its reason, the paginated config dump, /version,
// runtime log levels (ztunnel's /logging and Kmesh's /debug/loggers), the access-log switch, profiles, methods
// (405 with Allow) and unknown paths (404 with the list).
import t from 'tap'
import { startAdmin, listOf, DEFAULT_LIMIT } from '../src/admin.js'
import { createLogger, logLevels } from '../src/log.js'
import { AccessLog } from '../src/metrics/access-log.js'
import type { ConnectionRecord } from '../src/telemetry/types.js'

interface PageJson {
  total: number
  offset: number
  limit: number
  items: unknown[]
  next?: string
}
type DumpJson = { mode?: string; note?: string; workloads: PageJson; services: PageJson }

async function fixture(t: Parameters<Parameters<typeof t.test>[1]>[0]) {
  const logLines: string[] = []
  const log = createLogger({ format: 'json', out: { write: (s: string) => logLines.push(s) } as never })
  const authzLog = log.child({ component: 'authz' })
  const accessLines: string[] = []
  const accessLog = new AccessLog('off', { write: (s: string) => accessLines.push(s) })
  const workloads = Array.from({ length: 2500 }, (_, i) => ({ uid: `w${i}`, name: `pod-${i}` }))
  const state = { ready: false }
  const admin = await startAdmin('127.0.0.1:0', {
    ready: () => state.ready,
    notReadyReason: () => 'mesh file /etc/mesh.yaml refused at 2026-01-01T00:00:00.000Z: line 3: bad port',
    dump: () => ({ mode: 'local', ready: state.ready }),
    lists: () => ({
      workloads: listOf(
        () => workloads,
        undefined,
        () => workloads.length,
      ),
      services: listOf(() => []),
    }),
    version: () => ({ name: '@kmesh-ts/kmesh-daemon', version: '0.1.0' }),
    log,
    accessLog,
  })
  t.teardown(() => new Promise((r) => admin.close(r)))
  return { admin, log, authzLog, logLines, accessLog, accessLines, state, url: admin.url }
}

t.test('readiness: 503 with the reason, then 200; /debug/ready is the same', async (t) => {
  const f = await fixture(t)
  for (const path of ['/healthz/ready', '/debug/ready']) {
    const res = await fetch(f.url + path)
    t.equal(res.status, 503, path)
    t.equal(
      await res.text(),
      'not ready: mesh file /etc/mesh.yaml refused at 2026-01-01T00:00:00.000Z: line 3: bad port\n',
    )
  }
  f.state.ready = true
  t.equal((await fetch(`${f.url}/debug/ready`)).status, 200)
})

t.test('config dump: summary and paginated lists, bounded by default', async (t) => {
  const f = await fixture(t)
  const dump = (await (await fetch(`${f.url}/config_dump`)).json()) as DumpJson
  t.equal(dump.mode, 'local')
  t.equal(dump.workloads.total, 2500)
  t.equal(dump.workloads.items.length, DEFAULT_LIMIT)
  t.equal(dump.workloads.next, `?only=workloads&offset=${DEFAULT_LIMIT}&limit=${DEFAULT_LIMIT}`)
  t.same(dump.services, { total: 0, offset: 0, limit: DEFAULT_LIMIT, items: [] })
  t.match(dump.note, /at most 1000 items/)
  const last = (await (
    await fetch(`${f.url}/debug/config_dump?only=workloads&offset=2400&limit=500`)
  ).json()) as DumpJson
  t.notOk('mode' in last, 'only the list asked for')
  t.equal(last.workloads.items.length, 100)
  t.same(last.workloads.items[99], { uid: 'w2499', name: 'pod-2499' })
  t.notOk(last.workloads.next)
  const bad = await fetch(`${f.url}/config_dump?limit=-1`)
  t.equal(bad.status, 400)
  t.match(await bad.text(), /\?limit=-1: expected an integer/)
  t.equal((await fetch(`${f.url}/config_dump?only=nope`)).status, 400)
})

t.test('version', async (t) => {
  const f = await fixture(t)
  t.same(await (await fetch(`${f.url}/version`)).json(), { name: '@kmesh-ts/kmesh-daemon', version: '0.1.0' })
})

t.test("log levels: ztunnel's POST /logging and Kmesh's /debug/loggers", async (t) => {
  const f = await fixture(t)
  let res = await fetch(`${f.url}/logging?level=debug`, { method: 'POST' })
  t.equal(res.status, 200)
  t.equal(await res.text(), 'current log levels: default=debug,authz=debug\n')
  f.authzLog.debug('now visible')
  t.ok(
    f.logLines.some((l) => l.includes('now visible')),
    'a child made before the change logs at the new level',
  )
  res = await fetch(`${f.url}/logging?level=authz:warn`, { method: 'POST' })
  t.equal(await res.text(), 'current log levels: default=debug,authz=warn\n')
  res = await fetch(`${f.url}/logging?level=loud`, { method: 'POST' })
  t.equal(res.status, 400)
  t.match(await res.text(), /log level loud: expected one of/)
  t.equal((await fetch(`${f.url}/logging`, { method: 'POST' })).status, 400)
  t.match(await (await fetch(`${f.url}/logging`)).text(), /^current log levels: /)

  t.same(await (await fetch(`${f.url}/debug/loggers`)).json(), ['authz', 'default'])
  t.same(await (await fetch(`${f.url}/debug/loggers?name=authz`)).json(), { name: 'authz', level: 'warn' })
  res = await fetch(`${f.url}/debug/loggers`, {
    method: 'POST',
    body: JSON.stringify({ name: 'default', level: 'error' }),
  })
  t.equal(res.status, 200)
  t.equal(logLevels(f.log).default, 'error')
  res = await fetch(`${f.url}/debug/loggers`, { method: 'POST', body: '{' })
  t.equal(res.status, 400)
  res = await fetch(`${f.url}/debug/loggers`, { method: 'POST', body: JSON.stringify({ name: 'nope', level: 'info' }) })
  t.equal(res.status, 400)
  t.match(await res.text(), /logger nope: not found/)
})

t.test('access log switched at runtime: off, text, json; Kmesh ?enable=', async (t) => {
  const f = await fixture(t)
  const close: ConnectionRecord = {
    event: 'close',
    direction: 'outbound',
    src: { ip: '10.0.0.1', port: 40000 },
    dst: { ip: '10.0.1.5', port: 9000 },
    bytesSent: 12,
    bytesReceived: 34,
    srttUs: 80,
    minRttUs: 40,
    retransmits: 0,
    packetLoss: 0,
    durationMs: 1500,
    at: Date.parse('2026-01-02T03:04:05.000Z'),
    dstService: { name: 'echo', namespace: 'default', hostname: 'echo.default.svc.cluster.local' },
  }
  f.accessLog.record(close)
  t.equal(f.accessLines.length, 0, 'off by default')
  t.same(await (await fetch(`${f.url}/accesslog?enable=true`, { method: 'POST' })).json(), { mode: 'text', lines: 0 })
  f.accessLog.record(close)
  t.equal(
    f.accessLines[0],
    'accesslog: 2026-01-02T03:04:05.000Z src.addr=10.0.0.1:40000, src.workload=-, src.namespace=-, dst.addr=10.0.1.5:9000, dst.service=echo.default.svc.cluster.local, dst.workload=-, dst.namespace=default, start_time=2026-01-02T03:04:03.500Z, direction=OUTBOUND, sent_bytes=12, received_bytes=34, packet_loss=0, retransmissions=0, srtt=80us, min_rtt=40us, duration=1500ms\n',
  )
  await fetch(`${f.url}/accesslog?format=json`, { method: 'POST' })
  f.accessLog.record(close)
  t.match(JSON.parse(f.accessLines[1]!), { accesslog: true, 'dst.addr': '10.0.1.5:9000', sent_bytes: 12, srtt: 80 })
  f.accessLog.record({ ...close, event: 'open' })
  t.equal(f.accessLines.length, 2, 'opens are not logged')
  t.equal((await fetch(`${f.url}/accesslog?format=xml`, { method: 'POST' })).status, 400)
  t.same(await (await fetch(`${f.url}/accesslog?enable=false`, { method: 'POST' })).json(), { mode: 'off', lines: 2 })
})

t.test('profiles on request through node:inspector', async (t) => {
  const f = await fixture(t)
  const cpu = (await (await fetch(`${f.url}/debug/pprof/profile?seconds=0.2`)).json()) as {
    nodes: unknown[]
    startTime: number
    endTime: number
  }
  t.ok(cpu.nodes.length > 0, 'a .cpuprofile with call-tree nodes')
  t.ok(cpu.endTime > cpu.startTime)
  const heap = (await (await fetch(`${f.url}/debug/pprof/heap?seconds=0.2`)).json()) as { head: unknown }
  t.ok(heap.head, 'a sampling heap profile')
  t.equal((await fetch(`${f.url}/debug/pprof/profile?seconds=9999`)).status, 400)
})

t.test('methods and unknown paths', async (t) => {
  const f = await fixture(t)
  const res = await fetch(`${f.url}/config_dump`, { method: 'POST' })
  t.equal(res.status, 405)
  t.equal(res.headers.get('allow'), 'GET')
  t.equal((await fetch(`${f.url}/healthz/ready`, { method: 'DELETE' })).status, 405)
  const nf = await fetch(`${f.url}/nope`)
  t.equal(nf.status, 404)
  const text = await nf.text()
  for (const p of [
    '/healthz/ready',
    '/debug/ready',
    '/config_dump',
    '/debug/bpf',
    '/version',
    '/logging',
    '/debug/loggers',
  ])
    t.ok(text.includes(` ${p}`), `the 404 lists ${p}`)
})
