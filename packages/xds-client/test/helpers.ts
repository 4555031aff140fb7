// Shared test scaffolding: a client wired to record everything, against a TestXdsServer.
import type { Test } from 'tap'
import { XdsClient, istioNode } from '../src/index.js'
import type { ChangeBatch, Rejection, XdsClientEvent, XdsClientOptions } from '../src/index.js'
import { startTestXdsServer } from '../src/testing/index.js'
import type { TestXdsServer, TestXdsServerOptions } from '../src/testing/index.js'

export const NODE = istioNode({
  podIp: '127.0.0.1',
  podName: 'kmesh-abc',
  podNamespace: 'kmesh-system',
  nodeName: 'node-1',
})

export interface Rig {
  server: TestXdsServer
  client: XdsClient
  batches: ChangeBatch[]
  events: (XdsClientEvent & { at: number })[]
  /** what the handler returns for the next batches (consumer rejections) */
  reject: (b: ChangeBatch) => Rejection[] | void
  /** resolve with the first batch after `from` matching the predicate */
  batch: (pred: (b: ChangeBatch) => boolean, from?: number) => Promise<ChangeBatch>
  event: <K extends XdsClientEvent['type']>(
    type: K,
    from?: number,
    pred?: (e: Extract<XdsClientEvent, { type: K }>) => boolean,
  ) => Promise<Extract<XdsClientEvent, { type: K }> & { at: number }>
}

export async function rig(
  t: Test,
  serverOpts: TestXdsServerOptions = {},
  clientOpts: Partial<XdsClientOptions> = {},
  existing?: TestXdsServer,
): Promise<Rig> {
  const server = existing ?? (await startTestXdsServer(serverOpts))
  const batches: ChangeBatch[] = []
  const events: (XdsClientEvent & { at: number })[] = []
  const listeners = new Set<() => void>()
  const notify = (): void => {
    for (const l of [...listeners]) l()
  }
  const r: Rig = {
    server,
    client: undefined as unknown as XdsClient,
    batches,
    events,
    reject: () => undefined,
    batch: (pred, from = 0) => until(() => batches.slice(from).find(pred), 'batch'),
    event: (type, from = 0, pred = () => true) =>
      until(() => events.slice(from).find((e) => e.type === type && pred(e as never)) as never, `event ${type}`),
  }
  function until<T>(probe: () => T | undefined, what: string, timeoutMs = 5000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const v = probe()
        if (v === undefined) return
        listeners.delete(check)
        clearTimeout(timer)
        resolve(v)
      }
      const timer = setTimeout(() => {
        listeners.delete(check)
        reject(new Error(`timed out waiting for ${what}`))
      }, timeoutMs)
      listeners.add(check)
      check()
    })
  }
  r.client = new XdsClient({
    address: server.address,
    tls: 'insecure',
    node: NODE,
    // the suite runs on the default transport, and again on grpc-js (test/transport-grpc-js.test.ts)
    ...(process.env.KMESH_XDS_TRANSPORT ? { transport: process.env.KMESH_XDS_TRANSPORT as 'http2' | 'grpc-js' } : {}),
    handler: (b) => {
      batches.push(b)
      notify()
      return r.reject(b) ?? undefined
    },
    onEvent: (e) => {
      events.push({ ...e, at: performance.now() })
      notify()
    },
    ...clientOpts,
  })
  t.teardown(async () => {
    await r.client.close()
    if (!existing) await server.close()
  })
  return r
}

export const ip4 = (...b: number[]): Uint8Array => new Uint8Array(b)
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
