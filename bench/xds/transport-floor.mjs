/**
 * The transport's floor for a push: the same resources pushed by a testing server of their own (in this process,
 * as the daemon's is) to a bare gRPC stream that only takes the message's bytes — no decoding, nothing applied,
 * no ACK. Sent → the whole message received, best of `repeat` pushes. What a resume can cost at the least here,
 * where the sender is Node's gRPC in the benchmark's own process (istiod, in Go, sends faster).
 */
import { createRequire } from 'node:module'

const XDS_CLIENT = new URL('../../packages/xds-client/', import.meta.url)

export async function transportFloor(resources, repeat = 3) {
  const { startTestXdsServer, ADDRESS_TYPE_URL } = await import(new URL('dist/testing/index.js', XDS_CLIENT))
  const { encodeDeltaRequest, DELTA_ADS_METHOD } = await import(new URL('dist/wire.js', XDS_CLIENT))
  const grpc = createRequire(new URL('package.json', XDS_CLIENT))('@grpc/grpc-js')
  const server = await startTestXdsServer({ autoRespond: false })
  const channel = new grpc.Client(server.address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 1024 * 1024 * 1024,
    // as the daemon's client asks (xds-client FLOW_CONTROL_WINDOW)
    'grpc-node.flow_control_window': 16 * 1024 * 1024,
  })
  const call = channel.makeBidiStreamRequest(DELTA_ADS_METHOD, encodeDeltaRequest, (b) => b, new grpc.Metadata())
  let received
  call.on('data', (b) => received?.(b))
  call.on('error', () => {})
  try {
    call.write({ typeUrl: ADDRESS_TYPE_URL, node: { id: 'transport-floor' } })
    await server.waitFor(() => server.requests.length >= 1, 10000, 'the bare stream')
    let best = Number.POSITIVE_INFINITY
    let bytes = 0
    for (let r = 0; r < repeat; r++) {
      const got = new Promise((resolve) => {
        received = resolve
      })
      const [nonce] = server.upsertAddressList(resources)
      const sent = server.responses.find((x) => x.nonce === nonce)
      bytes = (await got).length
      best = Math.min(best, performance.now() - sent.at)
    }
    return { ms: best, bytes }
  } finally {
    call.cancel()
    channel.close()
    await server.close()
  }
}
