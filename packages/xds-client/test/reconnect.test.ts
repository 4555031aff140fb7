// Reconnect pacing, credentials read per connect, TLS.
import t from 'tap'
import type { Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ADDRESS_TYPE_URL as A } from '../src/index.js'
import { GrpcStatus, startTestXdsServer } from '../src/testing/index.js'
import { rig } from './helpers.js'

function tempDir(t: Test): string {
  const d = mkdtempSync(path.join(tmpdir(), 'xds-client-test-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

t.test('backoff against a refused port: 10 ms doubling, each gap within [base/2, base + slack]', async (t) => {
  // a port that was just free: bind, learn it, close
  const probe = await startTestXdsServer()
  const address = probe.address
  await probe.close()
  const r = await rig(t, {}, { address })
  const attempts = 8
  await r.event('connecting', 0, (e) => e.attempt === attempts)
  const starts = r.events.filter((e) => e.type === 'connecting')
  const ends = r.events.filter((e) => e.type === 'disconnected')
  let base = 10
  for (let i = 1; i < attempts; i++) {
    const d = ends[i - 1]!
    if (d.type !== 'disconnected') throw new Error('unreachable')
    t.notOk(d.benign, `attempt ${i} failed, not benign (${d.details.slice(0, 60)})`)
    t.ok(d.retryInMs >= base / 2 && d.retryInMs <= base, `retry ${i}: ${d.retryInMs} ms in [${base / 2}, ${base}]`)
    // the measured sleep between the failure and the next attempt: timers never fire early; allow 100 ms of event-loop slack on a loaded CI machine
    const slept = starts[i]!.at - d.at
    t.ok(slept >= d.retryInMs - 1 && slept <= d.retryInMs + 100, `slept ${slept.toFixed(1)} ms for ${d.retryInMs} ms`)
    base *= 2
  }
})

t.test('unhealthy closes double, a healthy stream resets; the cap is honoured', async (t) => {
  const r = await rig(t, { autoRespond: false }, { backoff: { maxMs: 40 } })
  const retries: number[] = []
  for (let i = 0; i < 5; i++) {
    await r.server.waitFor(() => r.server.liveStreamCount > 0 || undefined)
    const mark = r.events.length
    r.server.endStreams(GrpcStatus.PERMISSION_DENIED, 'token rejected')
    const d = await r.event('disconnected', mark)
    t.equal(d.benign, false)
    retries.push(d.retryInMs)
  }
  const bases = [10, 20, 40, 40, 40]
  retries.forEach((ms, i) =>
    t.ok(ms >= bases[i]! / 2 && ms <= bases[i]!, `retry ${ms} ms within [${bases[i]! / 2}, ${bases[i]}]`),
  )
  // now a stream that delivers a response, then UNAVAILABLE: reset
  await r.server.waitFor(() => r.server.liveStreamCount > 0 || undefined)
  r.server.pushRaw(A, [])
  await r.server.waitFor(() => r.server.acks.length > 0 || undefined)
  const mark = r.events.length
  r.server.endStreams(GrpcStatus.UNAVAILABLE, 'max age')
  const d = await r.event('disconnected', mark)
  t.equal(d.benign, true)
  t.ok(d.retryInMs <= 10, `reset: ${d.retryInMs} ms`)
})

t.test('the bearer token file is read again on every reconnect', async (t) => {
  const dir = tempDir(t)
  const tokenFile = path.join(dir, 'istio-token')
  writeFileSync(tokenFile, 'token-one\n')
  const r = await rig(t, {}, { tokenFile })
  await r.client.ready
  t.equal(r.server.streams[0]!.metadata['authorization'], 'Bearer token-one')
  writeFileSync(tokenFile, 'token-two')
  r.server.endStreams()
  await r.server.waitFor(() => r.server.streams[1])
  t.equal(r.server.streams[1]!.metadata['authorization'], 'Bearer token-two')
  // a token file that vanished: an error event naming it, retried with backoff, recovered when it is back
  rmSync(tokenFile)
  const mark = r.events.length
  r.server.endStreams()
  const err = await r.event('error', mark)
  t.match(err.error.message, new RegExp(`token file ${tokenFile}: ENOENT`))
  t.ok(typeof err.retryInMs === 'number')
  writeFileSync(tokenFile, 'token-three')
  await r.server.waitFor(() => r.server.streams[2], 5000)
  t.equal(r.server.streams[2]!.metadata['authorization'], 'Bearer token-three')
})

t.test('extra headers are sent on every stream', async (t) => {
  const r = await rig(t, {}, { headers: { 'x-cluster': 'c1' } })
  await r.client.ready
  t.equal(r.server.streams[0]!.metadata['x-cluster'], 'c1')
})

t.test('TLS with a CA file (and serverName), refused with the wrong CA', async (t) => {
  const dir = tempDir(t)
  const key = path.join(dir, 'key.pem')
  const cert = path.join(dir, 'cert.pem')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=istiod.istio-system.svc',
      '-addext',
      'subjectAltName=DNS:istiod.istio-system.svc,IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  )
  const server = await startTestXdsServer({ tls: { certChain: readFileSync(cert), privateKey: readFileSync(key) } })
  t.teardown(() => server.close())
  const ok = await rig(t, {}, { tls: { caFile: cert, serverName: 'istiod.istio-system.svc' } }, server)
  await ok.client.ready
  t.pass('connected over TLS, verified against the CA file')
  await ok.client.close()

  // the CA file is checked: an unrelated CA cannot verify istiod
  const otherKey = path.join(dir, 'k2.pem')
  const otherCert = path.join(dir, 'c2.pem')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=other',
      '-keyout',
      otherKey,
      '-out',
      otherCert,
    ],
    { stdio: 'ignore' },
  )
  const bad = await rig(t, {}, { tls: { caFile: otherCert, serverName: 'istiod.istio-system.svc' } }, server)
  const d = await bad.event('disconnected')
  t.equal(d.benign, false)
  t.equal(d.code, GrpcStatus.UNAVAILABLE)
  t.equal(bad.client.isReady, false)

  const missing = await rig(t, {}, { tls: { caFile: path.join(dir, 'nope.pem') } }, server)
  const e = await missing.event('error')
  t.match(e.error.message, /TLS CA file .*nope\.pem: ENOENT/)
})

t.test('options are validated at the boundary', async (t) => {
  const { XdsClient } = await import('../src/index.js')
  const base = { node: { id: 'x' }, handler: () => undefined, tls: 'insecure' as const }
  t.throws(() => new XdsClient({ ...base, node: { id: '' } }), /"node\.id" must be a non-empty string/)
  t.throws(() => new XdsClient({ ...base, tls: { caFile: '' } }), /"tls\.caFile"/)
  t.throws(() => new XdsClient({ ...base, backoff: { initialMs: 0 } }), /"backoff"/)
  t.throws(() => new XdsClient({ ...base, addresses: false, authorizations: false }), /both false/)
  t.throws(() => new XdsClient({ ...base, limits: { maxPortsPerService: 0 } }), /maxPortsPerService/)
  t.throws(
    () => new XdsClient({ ...base, limits: { maxPortsPerService: 2.5 } }),
    /"limits\.maxPortsPerService" must be a positive integer or Infinity/,
  )
  t.throws(() => new XdsClient({ ...base, limits: { maxPortsPerService: NaN } }), /maxPortsPerService/)
  t.doesNotThrow(
    () => new XdsClient({ ...base, limits: { maxPortsPerService: Infinity }, signal: AbortSignal.abort() }),
    'Infinity is no limit',
  )
  const { resolveOptions } = await import('../src/options.js')
  t.equal(resolveOptions(base).transport, 'http2', 'node:http2 by default')
  t.equal(resolveOptions({ ...base, channelOptions: { 'grpc.keepalive_time_ms': 1 } }).transport, 'grpc-js')
  t.equal(resolveOptions({ ...base, address: 'unix:///run/istiod.sock' }).transport, 'grpc-js')
  t.throws(
    () => new XdsClient({ ...base, transport: 'http2', channelOptions: { 'grpc.keepalive_time_ms': 1 } }),
    /channelOptions and unix: addresses need option "transport" "grpc-js"/,
  )
  t.throws(() => new XdsClient({ ...base, transport: 'quic' as 'http2' }), /"transport" is "http2" or "grpc-js"/)
})

t.test(
  'a response that does not parse ends the stream as INTERNAL (not benign), and the client reconnects',
  async (t) => {
    const r = await rig(t, { autoRespond: false })
    await r.server.waitFor(() => r.server.liveStreamCount > 0 || undefined)
    const mark = r.events.length
    // field 2 (resources) announcing 100 bytes that are not there
    r.server.pushBytes(Uint8Array.of(0x12, 0x64, 0x0a))
    const d = await r.event('disconnected', mark)
    t.equal(d.code, GrpcStatus.INTERNAL)
    t.match(d.details, /Response message parsing error: length 100 runs past the end/)
    t.equal(d.benign, false)
    t.notOk(
      r.events.slice(mark).some((e) => e.type === 'response'),
      'no response event for it',
    )
    t.equal(r.batches.length, 0, 'nothing handed over')
    await r.server.waitFor(() => r.server.streams.length >= 2 || undefined)
    t.pass('reconnected')
  },
)
