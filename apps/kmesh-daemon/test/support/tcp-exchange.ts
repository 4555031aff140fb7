/**
 * A TCP exchange with known byte counts, for telemetry and getpeername tests: a server that reads until the client's
 * FIN and then answers `reply` bytes; and a client, run as its own process (inside a cgroup, a netns), that sends
 * `send` bytes, half-closes, reads to EOF and prints what it saw: its own port, getpeername's answer, the counts.
 */
import { createServer, type Server } from 'node:net'
import { execIn, type ExecPlace } from '../../src/system/cgroup-exec.js'

export interface ExchangeServer {
  host: string
  port: number
  /** Bytes received per connection, in accept order. */
  received: number[]
  close(): Promise<void>
}

export async function exchangeServer(host: string, port: number, reply: number): Promise<ExchangeServer> {
  const received: number[] = []
  const server: Server = createServer((socket) => {
    let n = 0
    socket.on('data', (d) => (n += d.length))
    socket.on('end', () => {
      received.push(n)
      socket.end(Buffer.alloc(reply, 0x61))
    })
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return {
    host,
    port,
    received,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
      }),
  }
}

export interface ExchangeResult {
  localAddress: string
  localPort: number
  /** getpeername(2) as Node reports it. */
  remoteAddress: string
  remotePort: number
  sent: number
  received: number
}

const CLIENT = `
const net = require('node:net')
const [host, port, send, family] = JSON.parse(process.argv[1])
const s = net.connect({ host, port, family: family || undefined }, () => {
  const peer = { remoteAddress: s.remoteAddress, remotePort: s.remotePort, localAddress: s.localAddress, localPort: s.localPort }
  let received = 0
  s.on('data', (d) => (received += d.length))
  s.on('end', () => {
    process.stdout.write(JSON.stringify({ ...peer, sent: send, received }))
    s.destroy()
  })
  s.end(Buffer.alloc(send, 0x62))
})
s.on('error', (e) => { console.error(e.message); process.exit(2) })
`

/** Runs one exchange from a process at `place`: connect to host:port, send `send` bytes, read to EOF. */
export async function exchangeFrom(
  place: ExecPlace,
  host: string,
  port: number,
  send: number,
  family?: 4 | 6,
): Promise<ExchangeResult> {
  const out = await execIn(place, [process.execPath, '-e', CLIENT, JSON.stringify([host, port, send, family ?? 0])])
  return JSON.parse(out) as ExchangeResult
}
