/**
 * The pod reconciler against the fake API server (test/support/fake-kube-api.ts, the real list/watch wire
 * protocol): the initial lists, label flips on a pod and on a namespace, a pod deleted, a bookmark, 410 Gone ->
 * re-list, the API going away -> backoff then recovery, a netns not found and a failing control connect -> retried
 * and visible in the status. The enrol action and the netns finder are fakes here; node-mode.kernel.test.ts runs
 * the real ones.
 */
import t from 'tap'
import { pino } from 'pino'
import { startNodeAgent } from '../src/node/node-agent.js'
import type { FoundNetns } from '../src/node/netns-finder.js'
import type { EnrolOp, PodReconciler, ReconcilerEvent } from '../src/node/reconciler.js'
import type { InformerEvent } from '../src/kube/informer.js'
import { FakeKubeApi, type KubeObj } from './support/fake-kube-api.js'

const MODE = 'istio.io/dataplane-mode'
const silent = pino({ level: 'silent' })

const ns = (name: string, labels: Record<string, string> = {}): KubeObj => ({ metadata: { name, labels } })
const pod = (
  namespace: string,
  name: string,
  ip: string,
  node = 'node-1',
  labels: Record<string, string> = {},
): KubeObj => ({
  metadata: { name, namespace, labels },
  spec: { nodeName: node, containers: [{ name: 'app', image: 'app' }] },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
})

async function until(what: string, pred: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

interface Setup {
  api: FakeKubeApi
  agent: PodReconciler
  /** The enrol actions done, as "op netns". */
  acts: string[]
  events: (ReconcilerEvent | ({ informer: string } & InformerEvent))[]
  /** IP -> netns the fake finder answers with; delete an entry to make a pod's netns vanish. */
  netns: Map<string, FoundNetns>
  failAct: { next: number }
  state(key: string): ReturnType<PodReconciler['pods']>[number] | undefined
}

async function setup(
  t: { teardown(fn: () => unknown): void },
  seed: (api: FakeKubeApi) => void,
  resyncMs = 0,
): Promise<Setup> {
  const api = await FakeKubeApi.start()
  t.teardown(() => api.close())
  seed(api)
  const acts: string[] = []
  const events: Setup['events'] = []
  const netns = new Map<string, FoundNetns>()
  const failAct = { next: 0 }
  let pid = 1000
  for (const p of api.pods.objects.values()) {
    const ip = (p.status as { podIP: string }).podIP
    netns.set(ip, { path: `/proc/${++pid}/ns/net`, id: `net:[${pid}]`, pid })
  }
  const agent = startNodeAgent({
    nodeName: 'node-1',
    cgroupPath: '/unused',
    kubeconfigFile: api.kubeconfig,
    backoff: { initialMs: 30, maxMs: 200 },
    resyncMs,
    act: async (path: string, op: EnrolOp) => {
      if (failAct.next > 0) {
        failAct.next--
        throw new Error('the control connect returned ENETUNREACH (injected)')
      }
      acts.push(`${op} ${path}`)
    },
    findNetns: (ips) => ips.map((ip) => netns.get(ip)).find(Boolean),
    log: silent,
    onEvent: (e) => events.push(e),
  })
  t.teardown(() => agent.close())
  return {
    api,
    agent,
    acts,
    events,
    netns,
    failAct,
    state: (key) => agent.pods().find((p) => `${p.namespace}/${p.name}` === key),
  }
}

const podsListed = (s: Setup) =>
  s.events.filter((e) => 'informer' in e && e.informer === 'pods' && e.type === 'listed').length

t.test('initial lists, label flips, a deleted pod', async (t) => {
  const s = await setup(t, (api) => {
    api.namespaces.put(ns('mesh', { [MODE]: 'Kmesh' }))
    api.namespaces.put(ns('plain'))
    api.pods.put(pod('mesh', 'a', '10.1.0.1'))
    api.pods.put(pod('plain', 'b', '10.1.0.2'))
    api.pods.put(pod('mesh', 'c', '10.1.0.3', 'node-1', { [MODE]: 'none' }))
    api.pods.put(pod('mesh', 'elsewhere', '10.1.0.9', 'node-2'))
  })
  const pathOf = (ip: string) => s.netns.get(ip)!.path
  await until('three pods acted on', () => s.acts.length === 3)
  await s.agent.idle()
  await s.api.pods.waitForWatch(1)
  t.same(
    s.acts.sort(),
    [`enrol ${pathOf('10.1.0.1')}`, `unenrol ${pathOf('10.1.0.2')}`, `unenrol ${pathOf('10.1.0.3')}`].sort(),
    'a (namespace Kmesh) enrolled; b (no label) and c (pod none) unenrolled once, as a fresh start does',
  )
  const podList = s.api.requests.find((r) => r.path === '/api/v1/pods' && r.query.get('watch') !== 'true')!
  t.equal(podList.query.get('fieldSelector'), 'spec.nodeName=node-1', 'pods are listed with the node field selector')
  const podWatch = s.api.requests.find((r) => r.path === '/api/v1/pods' && r.query.get('watch') === 'true')!
  t.equal(podWatch.query.get('fieldSelector'), 'spec.nodeName=node-1', '... and watched with it')
  t.equal(podWatch.query.get('allowWatchBookmarks'), 'true', 'watches ask for bookmarks')
  const timeout = Number(podWatch.query.get('timeoutSeconds'))
  t.ok(timeout >= 300 && timeout < 600, `... and for a server-side end after 5-10 minutes (${timeout} s)`)
  t.equal(podWatch.query.get('resourceVersion'), (await listRv(s)).toString(), "the watch starts at the list's version")
  t.notOk(s.state('mesh/elsewhere'), 'a pod of another node is not seen')
  t.match(s.state('mesh/a'), { shouldEnrol: true, enrolled: true, by: 'reconciler', netns: pathOf('10.1.0.1') })
  t.match(s.state('plain/b'), { shouldEnrol: false, enrolled: false, reason: /no istio.io\/dataplane-mode label/ })

  // The namespace label flips on: b is enrolled, nothing else is touched.
  s.acts.length = 0
  s.api.namespaces.label('plain', { [MODE]: 'kmesh' })
  await until('b enrolled', () => s.acts.length === 1)
  t.same(s.acts, [`enrol ${pathOf('10.1.0.2')}`])
  // ... and off again.
  s.api.namespaces.label('plain', { [MODE]: null })
  await until('b unenrolled', () => s.acts.length === 2)
  t.same(s.acts[1], `unenrol ${pathOf('10.1.0.2')}`)

  // A pod label opts a out of its Kmesh namespace, then back in.
  s.api.pods.label('mesh/a', { [MODE]: 'none' })
  await until('a unenrolled', () => s.acts.length === 3)
  t.same(s.acts[2], `unenrol ${pathOf('10.1.0.1')}`)
  t.match(s.state('mesh/a'), { shouldEnrol: false, enrolled: false, reason: /pod label/ })
  s.api.pods.label('mesh/a', { [MODE]: null })
  await until('a enrolled again', () => s.acts.length === 4)

  // A change that does not change the decision does nothing.
  s.api.pods.label('mesh/a', { app: 'v2' })
  await until('the pod update is seen', () =>
    s.events.some((e) => e.type === 'watch-event' && e.name === 'a' && e.event === 'MODIFIED'),
  )
  await s.agent.idle()
  t.equal(s.acts.length, 4, 'an unrelated label change costs no control connect')

  // A deleted pod is forgotten.
  s.api.pods.remove('mesh/a')
  await until('a forgotten', () => s.events.some((e) => e.type === 'forgotten' && e.pod === 'mesh/a'))
  t.notOk(s.state('mesh/a'))
  t.equal(s.acts.length, 4, 'nothing to unenrol: the netns goes with the pod')

  // A new pod in the Kmesh namespace is enrolled when it gets its IP.
  s.api.pods.put({ ...pod('mesh', 'd', ''), status: { phase: 'Pending' } })
  await until('d waits for an IP', () => s.state('mesh/d')?.waiting === 'no pod IP yet')
  s.netns.set('10.1.0.4', { path: '/proc/2000/ns/net', id: 'net:[2000]', pid: 2000 })
  s.api.pods.put(pod('mesh', 'd', '10.1.0.4'))
  await until('d enrolled', () => s.acts.includes('enrol /proc/2000/ns/net'))
  t.match(s.state('mesh/d'), { enrolled: true, waiting: undefined })
  t.same(
    s.agent.decide('mesh', 'd'),
    { enrol: true, reason: `namespace label ${MODE}=Kmesh` },
    'decide() answers from the caches',
  )
  t.equal(s.agent.decide('mesh', 'nope'), undefined, 'an unknown pod: no answer')
  t.match(
    await s.agent.decideWhenKnown('plain', 'nope', 100),
    { enrol: false },
    'decideWhenKnown falls back on the namespace',
  )
})

async function listRv(s: Setup): Promise<number> {
  // The first pods list answered with the version current at that moment: the watch must start there.
  const e = s.events.find((e) => 'informer' in e && e.informer === 'pods' && e.type === 'listed') as {
    resourceVersion: string
  }
  return Number(e.resourceVersion)
}

t.test('bookmarks, a dropped watch, 410 Gone -> re-list', async (t) => {
  const s = await setup(t, (api) => {
    api.namespaces.put(ns('mesh', { [MODE]: 'kmesh' }))
    api.pods.put(pod('mesh', 'a', '10.2.0.1'))
    api.pods.put(pod('mesh', 'b', '10.2.0.2'))
  })
  await until('both enrolled', () => s.acts.length === 2)
  await s.api.pods.waitForWatch(1)

  // Unrelated writes (namespaces) move the version on; a bookmark tells the pod watch.
  s.api.namespaces.put(ns('other'))
  s.api.namespaces.put(ns('other2'))
  const rv = s.api.pods.bookmark()
  await until('bookmark seen', () => s.events.some((e) => e.type === 'bookmark' && e.resourceVersion === rv))
  const opened = s.api.pods.watchesOpened
  s.api.pods.dropWatches()
  await s.api.pods.waitForWatch(opened + 1)
  const watches = s.api.requests.filter((r) => r.path === '/api/v1/pods' && r.query.get('watch') === 'true')
  t.equal(watches.at(-1)!.query.get('resourceVersion'), rv, 'the watch resumes from the bookmark, without a list')
  t.equal(podsListed(s), 1, 'no re-list after a routine close')
  t.match(
    s.events.find((e) => e.type === 'watch-ended' && 'informer' in e && e.informer === 'pods'),
    { relist: false, error: undefined, retryInMs: 0 },
  )

  // History compacted: the open watch gets ERROR 410 Expired; the informer lists again. b vanished meanwhile
  // without an event reaching us: the list shows it.
  s.api.pods.objects.delete('mesh/b')
  s.api.pods.expire()
  await until('re-listed', () => podsListed(s) === 2)
  t.match(s.events.filter((e) => e.type === 'watch-ended' && 'informer' in e && e.informer === 'pods').at(-1), {
    relist: true,
    error: /410/,
  })
  await until('b forgotten', () => s.events.some((e) => e.type === 'forgotten' && e.pod === 'mesh/b'))
  t.notOk(s.state('mesh/b'))
  t.ok(s.state('mesh/a')?.enrolled, 'a stays enrolled, no new control connect for it')
  t.equal(s.acts.length, 2)

  // A watch resumed from a compacted version refused with HTTP 410 (the other way an API server says it).
  s.api.pods.expiredAs = 'http'
  s.api.pods.put(pod('mesh', 'c', '10.2.0.3'))
  s.netns.set('10.2.0.3', { path: '/proc/3000/ns/net', id: 'net:[3000]', pid: 3000 })
  await until('c enrolled', () => s.acts.includes('enrol /proc/3000/ns/net'))
  const before = podsListed(s)
  s.api.pods.objects.delete('mesh/c')
  s.api.namespaces.put(ns('other3')) // the version moves on without the pod watch hearing of it
  s.api.pods.expire({ tellWatches: false })
  s.api.pods.dropWatches()
  await until('re-listed again', () => podsListed(s) === before + 1)
  t.ok(
    s.api.requests.some(
      (r) => r.path === '/api/v1/pods' && r.query.get('watch') === 'true' && r.query.get('resourceVersion') !== '0',
    ),
    'a watch was tried from the old version first',
  )
  t.match(s.events.filter((e) => e.type === 'watch-ended' && 'informer' in e && e.informer === 'pods').at(-1), {
    relist: true,
    error: /HTTP 410/,
  })
  await until('c forgotten', () => !s.state('mesh/c'))
  t.pass('c, gone while compacted, is forgotten after the re-list')
})

t.test('the API goes away: backoff, the caches stay, recovery re-lists', async (t) => {
  const s = await setup(t, (api) => {
    api.namespaces.put(ns('mesh', { [MODE]: 'kmesh' }))
    api.pods.put(pod('mesh', 'a', '10.3.0.1'))
  })
  await until('a enrolled', () => s.acts.length === 1)
  await s.api.pods.waitForWatch(1)
  await s.api.down()
  await until(
    'two list failures on pods',
    () => s.events.filter((e) => e.type === 'list-failed' && 'informer' in e && e.informer === 'pods').length >= 2,
  )
  const failures = s.events.filter((e) => e.type === 'list-failed' && 'informer' in e && e.informer === 'pods') as {
    retryInMs: number
    error: string
  }[]
  t.match(failures[0]!.error, /ECONNREFUSED|connect/, `the failure is named: ${failures[0]!.error}`)
  t.ok(
    failures.every((f) => f.retryInMs > 0),
    `retried after a delay (${failures.map((f) => f.retryInMs).join(', ')} ms)`,
  )
  t.ok(
    s.agent.pods().some((p) => p.name === 'a' && p.enrolled),
    'the caches and the state stay while the API is away',
  )
  t.match(s.agent.status(), { informers: { pods: { lastError: /ECONNREFUSED|connect/ } } }, 'the status shows it')

  // Changes made while we were away arrive with the re-list.
  s.api.pods.put(pod('mesh', 'b', '10.3.0.2'))
  s.netns.set('10.3.0.2', { path: '/proc/4000/ns/net', id: 'net:[4000]', pid: 4000 })
  const listsBefore = podsListed(s)
  await s.api.up()
  await until('re-listed after recovery', () => podsListed(s) > listsBefore)
  await until('b enrolled', () => s.acts.includes('enrol /proc/4000/ns/net'))
  t.equal(s.acts.length, 2, 'a is not enrolled twice')
  t.notOk(
    (s.agent.status() as { informers: { pods: { lastError?: string } } }).informers.pods.lastError,
    'the error clears',
  )
})

t.test('a netns not found and a failing control connect: retried with backoff, visible in the status', async (t) => {
  const s = await setup(t, (api) => {
    api.namespaces.put(ns('mesh', { [MODE]: 'kmesh' }))
    api.pods.put(pod('mesh', 'a', '10.4.0.1'))
  })
  const where = s.netns.get('10.4.0.1')!
  s.netns.delete('10.4.0.1')
  await until('two failures', () => s.events.filter((e) => e.type === 'failed').length >= 2)
  t.match(s.state('mesh/a'), {
    enrolled: undefined,
    lastError: /no network namespace holds pod IP 10\.4\.0\.1/,
    nextRetryAt: String,
  })
  t.ok(s.state('mesh/a')!.failures >= 2, `failures counted (${s.state('mesh/a')!.failures})`)
  s.failAct.next = 1
  s.netns.set('10.4.0.1', where)
  await until('the failing connect is reported', () =>
    s.events.some((e) => e.type === 'failed' && /ENETUNREACH/.test(e.error)),
  )
  t.match(s.state('mesh/a')?.lastError, /enrol of \/proc\/\d+\/ns\/net: the control connect returned ENETUNREACH/)
  await until('enrolled after the retry', () => s.state('mesh/a')?.enrolled === true)
  t.match(s.state('mesh/a'), { lastError: undefined, failures: 0 })
  t.same(s.acts, [`enrol ${where.path}`])

  // The pod restarts into a new sandbox (same IP, new netns): the resync catches it.
  s.netns.set('10.4.0.1', { path: '/proc/5000/ns/net', id: 'net:[5000]', pid: 5000 })
  s.api.pods.label('mesh/a', { restarted: 'yes' })
  await until('the new netns is enrolled', () => s.acts.includes('enrol /proc/5000/ns/net'))
  t.match(s.state('mesh/a'), { netnsId: 'net:[5000]', enrolled: true })
})

t.test('the resync looks at every pod again without any API event', async (t) => {
  const s = await setup(
    t,
    (api) => {
      api.namespaces.put(ns('mesh', { [MODE]: 'kmesh' }))
      api.pods.put(pod('mesh', 'a', '10.6.0.1'))
    },
    150,
  )
  await until('a enrolled', () => s.acts.length === 1)
  // The informers' first watches may open after the first decision: count requests only once both are open.
  await Promise.all([s.api.pods.waitForWatch(1), s.api.namespaces.waitForWatch(1)])
  const requests = s.api.requests.length
  // The pod's sandbox is replaced (same IP, new netns) and nothing reaches the API: the resync finds it.
  s.netns.set('10.6.0.1', { path: '/proc/6000/ns/net', id: 'net:[6000]', pid: 6000 })
  await until('the new netns is enrolled', () => s.acts.includes('enrol /proc/6000/ns/net'))
  t.ok(
    s.events.some((e) => e.type === 'resync'),
    'by a resync',
  )
  t.equal(s.api.requests.length, requests, 'from the caches: no request to the API')
  await new Promise((r) => setTimeout(r, 400))
  t.equal(s.acts.length, 2, 'later resyncs find nothing to do')
})
