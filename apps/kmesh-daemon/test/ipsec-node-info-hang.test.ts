/**
 * A KmeshNodeInfo watch that hangs silently (the connection died without a FIN: no event, no end, the server's
 * timeoutSeconds never arrives) is detected on the client side and replaced: KubernetesNodeInfoSource over the
 * shared informer (src/kube/informer.ts) against the fake API server in its hanging mode. Before the fix the
 * informer waited for the server's end for ever and a node added meanwhile was never seen.
 */
import t from 'tap'
import { pino } from 'pino'
import { KubernetesNodeInfoSource, type KubernetesNodeInfoEvent } from '../src/ipsec/index.js'
import { FakeKubeApi, kmeshNodeInfos } from './support/fake-kube-api.js'

const silent = pino({ level: 'silent' })
const crd = (name: string, i: number) => ({
  metadata: { name },
  spec: {
    spi: 1,
    addresses: [`192.168.0.${i}`],
    bootID: `${String(i).repeat(8)}-1111-4111-8111-${'b'.repeat(12)}`,
    podCIDRS: [`10.244.${i}.0/24`],
  },
})
const until = async (what: string, pred: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

t.test(
  'a silently hanging watch is aborted after timeoutSeconds + grace, re-listed, and the change arrives',
  async (t) => {
    const spec = kmeshNodeInfos('kmesh-system')
    const api = await FakeKubeApi.start([spec])
    t.teardown(() => api.close())
    const coll = api.collection(spec.path)
    coll.put(crd('node-b', 2))
    const events: KubernetesNodeInfoEvent[] = []
    const source = new KubernetesNodeInfoSource({
      nodeName: 'node-a',
      kubeconfigFile: api.kubeconfig,
      backoff: { initialMs: 20, maxMs: 100 },
      watchTimeout: { minSeconds: 1, graceMs: 300 },
      onEvent: (e) => events.push(e),
      log: silent,
    })
    t.teardown(() => source.close())
    source.start(() => {})
    await until('the first list', () => source.nodes().has('node-b'))
    await coll.waitForWatch(1)

    // From now on the connection is dead: the open watch is cut and its successor hangs.
    coll.hangWatches = true
    coll.dropWatches()
    await until('a watch left hanging', () => coll.watchesHung === 1)
    const hungAt = Date.now()
    coll.put(crd('node-c', 3)) // goes nowhere: no watch of the source is registered
    await new Promise((r) => setTimeout(r, 200))
    t.notOk(source.nodes().has('node-c'), 'not seen while the watch hangs')

    coll.hangWatches = false
    await until('node-c seen again', () => source.nodes().has('node-c'), 8_000)
    const took = Date.now() - hungAt
    const ended = events.find((e) => e.type === 'watch-ended' && /watch hung/.test(e.error ?? ''))
    t.ok(ended, `the hanging watch ended with an error: ${JSON.stringify(ended)}`)
    t.equal(ended?.type === 'watch-ended' && ended.relist, true, 'and the source listed again')
    t.ok(took >= 1_000 && took < 6_000, `detected after timeoutSeconds (1-2 s) + 0.3 s: ${took} ms`)
    t.ok(
      events.filter((e) => e.type === 'listed').length >= 2,
      'a second list brought the node added while the watch hung',
    )
  },
)

t.test('a healthy watch the server ends on time is resumed, not counted as hung', async (t) => {
  const spec = kmeshNodeInfos('kmesh-system')
  const api = await FakeKubeApi.start([spec])
  t.teardown(() => api.close())
  const coll = api.collection(spec.path)
  const events: KubernetesNodeInfoEvent[] = []
  const source = new KubernetesNodeInfoSource({
    nodeName: 'node-a',
    kubeconfigFile: api.kubeconfig,
    backoff: { initialMs: 20, maxMs: 100 },
    watchTimeout: { minSeconds: 1, graceMs: 300 },
    onEvent: (e) => events.push(e),
    log: silent,
  })
  t.teardown(() => source.close())
  source.start(() => {})
  await coll.waitForWatch(1)
  await coll.waitForWatch(2, 5_000) // the server ended the first after its timeoutSeconds (1-2 s)
  coll.put(crd('node-d', 4))
  await until('node-d', () => source.nodes().has('node-d'))
  t.notOk(
    events.some((e) => e.type === 'watch-ended' && e.error),
    'no watch ended with an error',
  )
  t.equal(events.filter((e) => e.type === 'listed').length, 1, 'resumed without listing again')
})
