// Responses read from a gRPC byte stream chunk by chunk (response-stream.ts) equal decodeDeltaResponse of each
// whole message, however the bytes are cut: random pushes (resources, removals, errors, control plane) framed
// back to back and split at random places (down to one byte), and streams that are not valid (a field past its
// message, a compressed flag, a message over the limit) are refused.
import t from 'tap'
import { seededRandom } from '@kmesh-ts/testkit'
import { encodeAddress } from '../src/encode.js'
import { MessageTooLargeError, ResponseStreamReader } from '../src/response-stream.js'
import { ADDRESS_TYPE_URL } from '../src/types.js'
import { decodeDeltaResponse, encodeDeltaResponse } from '../src/wire.js'
import { WireFormatError } from '../src/wire-reader.js'

const { seed, random, pick, chance } = seededRandom('KMESH_STREAM_SEED')

function randomResponse(n: number): Buffer {
  return encodeDeltaResponse({
    typeUrl: ADDRESS_TYPE_URL,
    systemVersionInfo: chance(0.5) ? 'v1' : '',
    nonce: `nonce-${n}`,
    resources: Array.from({ length: Math.floor(random() * 40) }, (_, i) => ({
      name: `Kubernetes//Pod/ns/w-${n}-${i}`,
      version: chance(0.3) ? 'x'.repeat(Math.floor(random() * 300)) : '',
      aliases: chance(0.2) ? ['net/10.0.0.1'] : [],
      resource: {
        typeUrl: ADDRESS_TYPE_URL,
        value: encodeAddress({
          workload: { uid: `Kubernetes//Pod/ns/w-${n}-${i}`, name: 'w'.repeat(Math.floor(random() * 200)) },
        }),
      },
    })),
    removedResources: chance(0.3) ? ['ns/gone', 'ns/gone-too'] : [],
    controlPlane: chance(0.2) ? { identifier: 'istiod-1' } : undefined,
    resourceErrors: chance(0.2)
      ? [{ resourceName: { name: 'ns/x' }, errorDetail: { code: 5, message: 'not found', details: [] } }]
      : [],
  })
}

const frame = (msg: Uint8Array, flag = 0): Buffer => {
  const head = Buffer.alloc(5)
  head[0] = flag
  head.writeUInt32BE(msg.length, 1)
  return Buffer.concat([head, msg])
}

function chunks(all: Buffer): Buffer[] {
  const out: Buffer[] = []
  const max = pick([1, 3, 17, 200, 16384, 100000])
  for (let at = 0; at < all.length; ) {
    const n = 1 + Math.floor(random() * max)
    out.push(all.subarray(at, at + n))
    at += n
  }
  return out
}

t.test('chunked reading equals whole-message decoding', async (t) => {
  t.comment(`seed ${seed} (replay: KMESH_STREAM_SEED=${seed})`)
  let compared = 0
  for (let run = 0; run < 300; run++) {
    const messages = Array.from({ length: 1 + Math.floor(random() * 4) }, (_, i) => randomResponse(run * 10 + i))
    if (chance(0.1)) messages.push(Buffer.alloc(0)) // an empty message is an empty response
    const got: Array<[unknown, number]> = []
    const reader = new ResponseStreamReader(1 << 30, (res, bytes) => got.push([res, bytes]))
    for (const c of chunks(Buffer.concat(messages.map((m) => frame(m))))) reader.push(c)
    t.ok(reader.atBoundary, 'the stream ends between messages')
    t.equal(got.length, messages.length, `run ${run}: one response per message`)
    messages.forEach((m, i) => {
      t.same(got[i]?.[0], decodeDeltaResponse(m), `run ${run} message ${i}`)
      t.equal(got[i]?.[1], m.length)
      compared++
    })
  }
  t.ok(compared > 300, `${compared} messages compared`)
})

t.test('what is not a valid stream is refused', async (t) => {
  const msg = randomResponse(1)
  const feed = (bytes: Buffer, max = 1 << 30) => {
    const reader = new ResponseStreamReader(max, () => {})
    for (const c of chunks(bytes)) reader.push(c)
    return reader
  }
  t.throws(() => feed(frame(msg, 1)), WireFormatError, 'a compressed message')
  t.throws(() => feed(frame(msg), msg.length - 1), MessageTooLargeError, 'a message over the limit')
  // the message's length cut by 3: its last field runs past the end
  const short = frame(msg)
  short.writeUInt32BE(msg.length - 3, 1)
  t.throws(() => feed(short.subarray(0, short.length - 3)), WireFormatError, 'a field past the end of its message')
  const cut = feed(frame(msg).subarray(0, 20))
  t.notOk(cut.atBoundary, 'a stream cut inside a message is not at a boundary')
})
