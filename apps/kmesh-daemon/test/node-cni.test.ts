/**
 * Node mode's kmesh-cni socket (src/node/node-mode.ts over src/cni/server.ts): the plugin's questions answered from
 * the reconciler's caches (a pod not listed yet is waited for, then the namespace decides), the plugin's outcome
 * recorded so the reconciler does not enrol the pod a second time, a wrong early answer corrected by the
 * reconciler. The plugin is played by a socket client speaking its line protocol; the API is the fake server.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import { startNodeAgent } from '../src/node/node-agent.js'
import type { FoundNetns } from '../src/node/netns-finder.js'
import { startCniServerFor } from '../src/node/node-mode.js'
import { FakeKubeApi, type KubeObj } from './support/fake-kube-api.js'

const MODE = 'istio.io/dataplane-mode'
const silent = pino({ level: 'silent' })
const pod = (namespace: string, name: string, ip: string, labels: Record<string, string> = {}): KubeObj => ({
  metadata: { name, namespace, labels },
  spec: { nodeName: 'node-1' },
  status: { phase: 'Running', podIP: ip },
})

async function until(what: string, pred: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** One CNI call as the plugin makes it: the request, the answer, and (when told to enrol) the outcome. */
function cniCall(
  socketPath: string,
  request: Record<string, string>,
  outcome?: { enrolled: boolean; detail: string },
): Promise<{ enrol: boolean; reason: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath)
    let buf = ''
    s.setEncoding('utf8')
    s.on('error', reject)
    s.on('data', (d: string) => {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      const answer = JSON.parse(buf.slice(0, nl)) as { enrol: boolean; reason: string }
      if (answer.enrol && outcome) s.end(`${JSON.stringify(outcome)}\n`)
      else s.end()
      resolve(answer)
    })
    s.write(`${JSON.stringify({ command: 'ADD', containerId: 'c1', ifname: 'eth0', podUid: 'u', ...request })}\n`)
  })
}

t.test('the plugin asks, the caches answer, the outcome is recorded', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'kmesh-node-cni-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const api = await FakeKubeApi.start()
  t.teardown(() => api.close())
  api.namespaces.put({ metadata: { name: 'mesh', labels: { [MODE]: 'kmesh' } } })
  api.namespaces.put({ metadata: { name: 'plain' } })
  api.pods.put(pod('plain', 'b', '10.5.0.2'))

  // The CNI's netns path for pod c, and the same namespace as the /proc scan would find it.
  const cNetns = join(work, 'cni-c')
  writeFileSync(cNetns, '')
  const netns = new Map<string, FoundNetns>([
    ['10.5.0.2', { path: '/proc/20/ns/net', id: 'net:[20]', pid: 20 }],
    ['10.5.0.3', { path: '/proc/30/ns/net', id: `net:[${statSync(cNetns).ino}]`, pid: 30 }],
    ['10.5.0.4', { path: '/proc/40/ns/net', id: 'net:[40]', pid: 40 }],
  ])
  const acts: string[] = []
  const agent = startNodeAgent({
    nodeName: 'node-1',
    cgroupPath: '/unused',
    kubeconfigFile: api.kubeconfig,
    resyncMs: 0,
    act: async (path, op) => {
      acts.push(`${op} ${path}`)
    },
    findNetns: (ips) => ips.map((ip) => netns.get(ip)).find(Boolean),
    log: silent,
  })
  t.teardown(() => agent.close())
  const socketPath = join(work, 'cni.sock')
  const server = await startCniServerFor(agent, socketPath, silent)
  t.teardown(() => server.close())

  // Pod c is created: the runtime calls the plugin before the pod reaches our cache; the answer waits for it. (As on
  // a real node, the pod has no IP until its sandbox is up, after the CNI calls.)
  setTimeout(() => api.pods.put({ ...pod('mesh', 'c', ''), status: { phase: 'Pending' } }), 200)
  const started = Date.now()
  const answer = await cniCall(
    socketPath,
    { netns: cNetns, podNamespace: 'mesh', podName: 'c' },
    { enrolled: true, detail: 'ECONNREFUSED' },
  )
  t.same(answer, { enrol: true, reason: `namespace label ${MODE}=kmesh` })
  t.ok(Date.now() - started < 1500, `answered once the pod was listed (${Date.now() - started} ms)`)
  await until('the outcome is recorded', () => agent.pods().some((p) => p.name === 'c' && p.by === 'cni'))
  api.pods.put(pod('mesh', 'c', '10.5.0.3'))
  await until('the IP is seen', () => agent.pods().some((p) => p.name === 'c' && p.podIPs.length === 1))
  await agent.idle()
  t.match(
    agent.pods().find((p) => p.name === 'c'),
    { enrolled: true, by: 'cni', netns: cNetns },
  )
  t.notOk(
    acts.some((a) => a.includes('/proc/30/')),
    'the reconciler does not enrol c again: the CNI did it',
  )

  t.same(await cniCall(socketPath, { netns: '/x', podNamespace: 'plain', podName: 'b' }), {
    enrol: false,
    reason: `no ${MODE} label`,
  })
  t.match(await cniCall(socketPath, { netns: '/x', podNamespace: '', podName: '' }), {
    enrol: false,
    reason: /not a Kubernetes pod/,
  })

  // A pod the API has not shown us in time: the namespace decides (enrol), and when the pod appears with the
  // label none, the reconciler unenrols it.
  const early = await cniCall(
    socketPath,
    { netns: join(work, 'cni-d'), podNamespace: 'mesh', podName: 'd' },
    { enrolled: true, detail: 'ECONNREFUSED' },
  )
  t.same(early, { enrol: true, reason: `namespace label ${MODE}=kmesh` }, 'unknown pod: the namespace decides')
  api.pods.put(pod('mesh', 'd', '10.5.0.4', { [MODE]: 'none' }))
  await until('d unenrolled by the reconciler', () => acts.includes('unenrol /proc/40/ns/net'))
  t.match(
    agent.pods().find((p) => p.name === 'd'),
    { enrolled: false, by: 'reconciler', reason: /pod label/ },
  )
})
