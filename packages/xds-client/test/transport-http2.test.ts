// The http2 transport against a raw node:http2 server that behaves badly in each of the ways a proxy or a broken
// server can: the status a gRPC client would report for each, and what the client sends (method, headers,
// metadata, framing). The well-behaved paths run in the rest of the suite against the grpc-js testing server.
import http2 from 'node:http2'
import { type AddressInfo, createServer, type Socket } from 'node:net'
import { type AdsStatus, Http2AdsCall } from '../src/ads-http2.js'
import t from 'tap'
import { XdsClient, type XdsClientEvent } from '../src/index.js'
import { ADDRESS_TYPE_URL } from '../src/types.js'
import { DELTA_ADS_METHOD, decodeDeltaRequest, encodeDeltaResponse } from '../src/wire.js'

type Behaviour = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void

/** The servers serve() started, by port. */
const servers = new Map<number, http2.Http2Server>()

async function serve(t: Tap.Test, behave: Behaviour): Promise<string> {
  const server = http2.createServer()
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {})
    behave(stream, headers)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        // biome-ignore lint/suspicious/noExplicitAny: closeAllConnections exists on http2 servers since node 18.2
        ;(server as any).closeAllConnections?.()
        server.close(() => resolve())
      }),
  )
  const port = (server.address() as AddressInfo).port
  servers.set(port, server)
  return `127.0.0.1:${port}`
}

/** The first disconnection the client reports. */
async function firstDisconnect(
  t: Tap.Test,
  address: string,
  extra: Partial<ConstructorParameters<typeof XdsClient>[0]> = {},
): Promise<Extract<XdsClientEvent, { type: 'disconnected' }>> {
  return new Promise((resolve) => {
    const client = new XdsClient({
      address,
      tls: 'insecure',
      transport: 'http2',
      node: { id: 'sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local' },
      handler: () => undefined,
      backoff: { initialMs: 10_000, maxMs: 10_000, jitter: 0 },
      onEvent: (e) => {
        if (e.type === 'disconnected') resolve(e)
      },
      ...extra,
    })
    t.teardown(() => client.close())
  })
}

const grpcFrame = (msg: Uint8Array, flag = 0): Buffer => {
  const head = Buffer.alloc(5)
  head[0] = flag
  head.writeUInt32BE(msg.length, 1)
  return Buffer.concat([head, msg])
}

const response = () => encodeDeltaResponse({ typeUrl: ADDRESS_TYPE_URL, nonce: 'n1' })

t.test('an HTTP error without a gRPC status maps as gRPC does', async (t) => {
  const address = await serve(t, (stream) => stream.respond({ ':status': 404 }, { endStream: true }))
  const d = await firstDisconnect(t, address)
  t.equal(d.code, 12, 'UNIMPLEMENTED')
  t.match(d.details, /HTTP status code 404/)
})

t.test('a trailers-only status, its message percent-decoded', async (t) => {
  const address = await serve(t, (stream) =>
    stream.respond(
      {
        ':status': 200,
        'content-type': 'application/grpc',
        'grpc-status': '7',
        'grpc-message': 'token%20rejected%3A%20expired',
      },
      { endStream: true },
    ),
  )
  const d = await firstDisconnect(t, address)
  t.equal(d.code, 7, 'PERMISSION_DENIED')
  t.equal(d.details, 'token rejected: expired')
})

t.test('a compressed message nobody agreed to ends the stream INTERNAL', async (t) => {
  const address = await serve(t, (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
    stream.write(grpcFrame(response(), 1))
  })
  const d = await firstDisconnect(t, address)
  t.equal(d.code, 13)
  t.match(d.details, /Response message parsing error: compressed message/)
})

t.test('a message over maxReceiveMessageBytes ends the stream RESOURCE_EXHAUSTED before it is kept', async (t) => {
  const address = await serve(t, (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
    stream.write(grpcFrame(Buffer.alloc(5000)))
  })
  const d = await firstDisconnect(t, address, { maxReceiveMessageBytes: 1000 })
  t.equal(d.code, 8)
  t.match(d.details, /larger than max \(5000 vs\. 1000\)/)
})

t.test('a stream the server refuses is UNAVAILABLE; one it resets otherwise is INTERNAL', async (t) => {
  const refused = await serve(t, (stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM))
  t.equal((await firstDisconnect(t, refused)).code, 14)
  const reset = await serve(t, (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR)
  })
  const d = await firstDisconnect(t, reset)
  t.equal(d.code, 13)
  t.match(d.details, /RST_STREAM with code 2/)
})

t.test('a stream cut inside a message is INTERNAL, one cut between messages UNAVAILABLE', async (t) => {
  const inside = await serve(t, (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
    stream.end(grpcFrame(response()).subarray(0, 12))
  })
  const d = await firstDisconnect(t, inside)
  t.equal(d.code, 13)
  t.match(d.details, /ended inside a message/)
  const between = await serve(t, (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
    stream.end()
  })
  t.equal((await firstDisconnect(t, between)).code, 14)
})

t.test('nothing listening: UNAVAILABLE, naming the connect error', async (t) => {
  // a port that was just free: listen, take the number, close
  const probe = http2.createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const d = await firstDisconnect(t, `127.0.0.1:${port}`)
  t.equal(d.code, 14)
  t.match(d.details, /ECONNREFUSED/)
})

t.test('what the client sends: a gRPC POST with its metadata, requests framed and decodable', async (t) => {
  let seen: http2.IncomingHttpHeaders | undefined
  const requests: ReturnType<typeof decodeDeltaRequest>[] = []
  const address = await serve(t, (stream, headers) => {
    seen = headers
    let buf = Buffer.alloc(0)
    stream.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
        const size = buf.readUInt32BE(1)
        t.equal(buf[0], 0, 'not compressed')
        requests.push(decodeDeltaRequest(buf.subarray(5, 5 + size)))
        buf = buf.subarray(5 + size)
      }
      if (requests.length === 2) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '14', 'grpc-message': 'bye' }))
        stream.end()
      }
    })
  })
  const d = await firstDisconnect(t, address, { headers: { 'X-Istio-Extra': 'v' } })
  t.equal(d.code, 14)
  t.equal(d.details, 'bye')
  t.equal(seen?.[':method'], 'POST')
  t.equal(seen?.[':path'], DELTA_ADS_METHOD)
  t.equal(seen?.['content-type'], 'application/grpc')
  t.equal(seen?.te, 'trailers')
  t.equal(seen?.['grpc-accept-encoding'], 'identity')
  t.equal(seen?.['x-istio-extra'], 'v', 'metadata as lower-case headers')
  t.equal(requests[0]?.node?.id, 'sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local', 'the node on the first request')
  t.same(
    requests.map((r) => r.typeUrl).sort(),
    [ADDRESS_TYPE_URL, 'type.googleapis.com/istio.security.Authorization'].sort(),
  )
})

t.test(
  'an HTTP error with a body is the HTTP error, not a parse error; a body that is not gRPC is UNKNOWN',
  async (t) => {
    const proxy = await serve(t, (stream) => {
      stream.respond({ ':status': 503, 'content-type': 'text/plain' })
      stream.end('upstream connect error or disconnect/reset before headers')
    })
    const d = await firstDisconnect(t, proxy)
    t.equal(d.code, 14, 'UNAVAILABLE')
    t.match(d.details, /HTTP status code 503/)
    const html = await serve(t, (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'text/html' })
      stream.end('<html></html>')
    })
    const h = await firstDisconnect(t, html)
    t.equal(h.code, 2, 'UNKNOWN')
    t.match(h.details, /content-type text\/html/)
  },
)

t.test('a connection reset or a GOAWAY mid-stream is UNAVAILABLE (benign after a healthy stream)', async (t) => {
  // the raw socket of each connection, to reset it as a crashed peer or a middlebox would
  const raw = new Set<Socket>()
  const reset = await serve(t, (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
    stream.write(grpcFrame(response()), () => {
      for (const socket of raw) socket.resetAndDestroy()
    })
  })
  const port = Number(reset.split(':')[1])
  servers.get(port)?.on('connection', (socket: Socket) => raw.add(socket))
  const r = await firstDisconnect(t, reset)
  t.equal(r.code, 14)
  t.match(r.details, /Connection dropped|ECONNRESET/)
  // istiod's max connection age: a GOAWAY, the open stream let run, then the connection closed
  const goaway = await serve(t, (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
    stream.write(grpcFrame(response()), () => {
      stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR)
      setTimeout(() => stream.session?.destroy(), 50)
    })
  })
  const g = await firstDisconnect(t, goaway)
  t.equal(g.code, 14)
  t.match(g.details, /GOAWAY/)
  t.equal(g.benign, true, 'benign: the backoff starts over')
})

/** A TCP server that accepts and never says a word (no TLS, no HTTP/2 settings). */
async function silent(t: Tap.Test): Promise<string> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return `127.0.0.1:${(server.address() as AddressInfo).port}`
}

const callTo = (address: string, extra: Partial<ConstructorParameters<typeof Http2AdsCall>[0]> = {}) =>
  new Http2AdsCall({
    address,
    tls: 'insecure',
    metadata: {},
    maxReceiveMessageBytes: 1 << 20,
    windowBytes: 1 << 20,
    ...extra,
  })
const statusOf = (call: Http2AdsCall) => new Promise<AdsStatus>((resolve) => call.on('status', resolve))
const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPWRAP' || r === 'TLSWRAP').length

t.test('a peer that never answers: UNAVAILABLE after the connect timeout, nothing left open', async (t) => {
  const address = await silent(t)
  const before = sockets()
  const timedOut = callTo(address, { connectTimeoutMs: 300 })
  const st = await statusOf(timedOut)
  t.equal(st.code, 14)
  t.match(st.details, /within 300 ms/)
  // cancelled in the middle of connecting: the connection is destroyed, not left to finish
  const cancelled = callTo(address, { tls: { ca: Buffer.alloc(0), key: null, cert: null } })
  await new Promise((r) => setTimeout(r, 100))
  cancelled.cancel()
  t.equal((await statusOf(cancelled)).code, 1, 'CANCELLED')
  await new Promise((r) => setTimeout(r, 100))
  t.equal(sockets(), before, 'no socket of either call is left open')
})

t.test('a stream that cannot be opened (a header HTTP/2 forbids): INTERNAL, the connection closed', async (t) => {
  const address = await serve(t, () => {})
  const before = sockets()
  const call = callTo(address, { metadata: { connection: 'keep-alive' } })
  const st = await statusOf(call)
  t.equal(st.code, 13)
  t.match(st.details, /cannot open the stream/)
  await new Promise((r) => setTimeout(r, 100))
  t.equal(sockets(), before, 'no socket left open')
})
