/**
 * Node mode on the real kernel: the daemon attaches to a child cgroup standing in for the node's cgroup v2 root
 * (named as the root through cgroup2Roots, so --allow-root-cgroup is exercised; nothing touches this machine's
 * real root), enrols nothing at start, and enrols the pods the fake API server (test/support/fake-kube-api.ts)
 * lists on its node. Pods are processes in network namespaces this test creates, each holding its pod IP, the
 * backend address and the VIP on its loopback (so nothing is added to the host's namespace): an enrolled pod's
 * connect to the VIP reaches the backend, an unenrolled pod's reaches the "untouched" server on the VIP itself.
 * Addresses: pod IPs 10.210.1.2 and 10.210.1.3, backend 10.210.0.100:18080, VIP 10.96.0.10:80 (inside the
 * namespaces only); host VIP 127.10.12.1:80 (unique to this file).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { privilegedSkip, tempNetns } from '@kmesh-ts/testkit'
import type { Daemon } from '../src/daemon.js'
import { spawnDaemon } from '../src/demo/daemon-process.js'
import { FakeKubeApi } from './support/fake-kube-api.js'
import { meshHarness, meshYaml } from './support/mesh-harness.js'

const skip = privilegedSkip(
  'BPF_PROG_TYPE_CGROUP_SOCK_ADDR connect4 with bpf_get_netns_cookie (kernel >= 5.7) attached by BPF links, ' +
    'network namespaces (CAP_SYS_ADMIN), a cgroup v2 mount and bpffs',
)

const MODE = 'istio.io/dataplane-mode'
const NODE = 'node-km-test'
const BACKEND = '10.210.0.100'
const VIP = '10.96.0.10'
const HOST_VIP = '127.10.12.1'

/** A pod's processes: HTTP servers on the backend address and on the VIP, inside the pod's namespace. */
const POD_SCRIPT = `
import { createServer } from 'node:http'
const serve = (host, port, name) => new Promise((resolve) => createServer((q, r) => { r.setHeader('connection', 'close'); r.end(name) }).listen(port, host, resolve))
await serve('${BACKEND}', 18080, 'backend')
await serve('${VIP}', 80, 'untouched')
console.log('ready')
`

interface Pod {
  name: string
  ip: string
  netnsPath: string
  process: ChildProcess
}

async function startPod(t: { teardown(fn: () => unknown): void }, name: string, ip: string): Promise<Pod> {
  const ns = tempNetns()
  t.teardown(() => ns.close())
  ns.exec(['ip', 'link', 'set', 'lo', 'up'])
  for (const a of [ip, BACKEND, VIP]) ns.exec(['ip', 'addr', 'add', `${a}/32`, 'dev', 'lo'])
  // The pod's interface, as a CNI would give it (here a veth pair whose both ends stay in the pod's namespace):
  // where authorization's XDP program goes. The peer end is down, so it is left alone.
  ns.exec(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0peer'])
  ns.exec(['ip', 'link', 'set', 'eth0', 'up'])
  const netnsPath = `/run/netns/${ns.name}`
  const child = spawn('nsenter', [`--net=${netnsPath}`, process.execPath, '--input-type=module', '-e', POD_SCRIPT], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve())
    child.once('exit', (code) => reject(new Error(`pod ${name} exited ${code} before it was ready`)))
  })
  return { name, ip, netnsPath, process: child }
}

const podObject = (namespace: string, name: string, ip: string) => ({
  metadata: { name, namespace, labels: { app: name } },
  spec: { nodeName: NODE, containers: [{ name: 'app', image: 'app' }] },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
})

async function until(what: string, pred: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

t.test(
  'node mode: only enrolled pods are redirected; label flips enrol and unenrol a running pod',
  { skip },
  async (t) => {
    const h = await meshHarness(t)
    const api = await FakeKubeApi.start()
    t.teardown(() => api.close())
    const a = await startPod(t, 'a', '10.210.1.2')
    const b = await startPod(t, 'b', '10.210.1.3')
    api.namespaces.put({ metadata: { name: 'mesh', labels: { [MODE]: 'Kmesh' } } })
    api.namespaces.put({ metadata: { name: 'plain' } })
    api.pods.put(podObject('mesh', 'a', a.ip))
    api.pods.put(podObject('plain', 'b', b.ip))
    api.pods.put({ ...podObject('mesh', 'other-node', '10.210.1.9'), spec: { nodeName: 'another-node' } })

    await h.sentinel(HOST_VIP, 80)
    h.writeMesh(
      meshYaml(
        [{ name: 'backend', ip: BACKEND, services: { s: { 80: 18080 } } }],
        [{ name: 's', vips: [VIP, HOST_VIP], ports: { 80: 18080 } }],
      ),
    )
    const daemon: Daemon = await h.start({
      nodeName: NODE,
      nodeMode: { kubeconfig: api.kubeconfig, cniSocket: '', resyncMs: 0 },
      // The child cgroup plays the node's root: the guard refuses it without --allow-root-cgroup.
      cgroup2Roots: [h.cgroup],
      allowRootCgroup: true,
      adminAddress: '127.0.0.1:0',
    })
    const reconciler = daemon.node!.reconciler
    const state = (name: string) => reconciler.pods().find((p) => p.name === name)
    await until('a enrolled and b looked at', () => state('a')?.enrolled === true && state('b')?.enrolled === false)
    t.equal(daemon.dataplane.maps.manage.count(), 1, 'km_manage holds one netns: pod a (not the host, not b)')
    t.match(state('a'), { shouldEnrol: true, by: 'reconciler', netns: /^\/proc\/\d+\/ns\/net$/, lastError: undefined })
    t.equal(state('a')!.netns, `/proc/${a.process.pid}/ns/net`, "a's netns was found through its process by pod IP")
    t.notOk(state('other-node'), "another node's pod is not seen")

    const redirected = { [`${VIP}:80`]: { backend: 3 } }
    const untouched = { [`${VIP}:80`]: { untouched: 3 } }
    t.same(
      await h.probe([`${VIP}:80`], 3, { netnsPath: a.netnsPath }),
      redirected,
      'pod a (namespace Kmesh): redirected',
    )
    t.same(await h.probe([`${VIP}:80`], 3, { netnsPath: b.netnsPath }), untouched, 'pod b (unlabelled): untouched')
    t.same(
      await h.probe([`${HOST_VIP}:80`], 3),
      { [`${HOST_VIP}:80`]: { untouched: 3 } },
      'a host process in the attached cgroup, not enrolled: untouched',
    )

    // The namespace label flips: the running pod b is enrolled, then unenrolled.
    const flipped = Date.now()
    api.namespaces.label('plain', { [MODE]: 'kmesh' })
    await until('b enrolled', () => state('b')?.enrolled === true)
    t.comment(
      `namespace label flip -> b enrolled in ${Date.now() - flipped} ms (watch event, /proc scan, control connect)`,
    )
    t.equal(daemon.dataplane.maps.manage.count(), 2)
    t.same(
      await h.probe([`${VIP}:80`], 3, { netnsPath: b.netnsPath }),
      redirected,
      'b redirected once its namespace is labelled',
    )
    api.namespaces.label('plain', { [MODE]: null })
    await until('b unenrolled', () => state('b')?.enrolled === false)
    t.equal(daemon.dataplane.maps.manage.count(), 1)
    t.same(await h.probe([`${VIP}:80`], 3, { netnsPath: b.netnsPath }), untouched, 'b untouched again')

    // A pod label opts a out of its Kmesh namespace.
    api.pods.label('mesh/a', { [MODE]: 'none' })
    await until('a unenrolled', () => state('a')?.enrolled === false)
    t.equal(daemon.dataplane.maps.manage.count(), 0, 'km_manage is empty')
    t.same(await h.probe([`${VIP}:80`], 3, { netnsPath: a.netnsPath }), untouched, 'a untouched with pod label none')
    api.pods.label('mesh/a', { [MODE]: null })
    await until('a enrolled again', () => state('a')?.enrolled === true)

    // Authorization follows enrolment: XDP on the enrolled pods' interfaces only.
    const authzAttachments = async () =>
      (
        (await (await fetch(`${daemon.admin!.url}/debug/config_dump`)).json()) as {
          authz: { attached: { netns: string; ifname: string }[] }
        }
      ).authz.attached
    t.same(
      (await authzAttachments()).map((x) => `${x.netns} ${x.ifname}`).sort(),
      [`/proc/${a.process.pid}/ns/net eth0`, `/proc/${a.process.pid}/ns/net eth0peer`],
      'the authorization program is on pod a (enrolled again), not on b',
    )

    // The admin dump shows the enrolment state per pod.
    const dump = (await (await fetch(`${daemon.admin!.url}/debug/config_dump`)).json()) as {
      node: { pods: { namespace: string; name: string; enrolled: boolean; reason: string; netns: string }[] }
    }
    t.match(dump.node.pods, [
      { namespace: 'mesh', name: 'a', enrolled: true, reason: `namespace label ${MODE}=Kmesh`, netns: /^\/proc\// },
      { namespace: 'plain', name: 'b', enrolled: false, reason: /no istio.io\/dataplane-mode label/ },
    ])
    t.match(dump.node, { informers: { pods: { synced: true }, namespaces: { synced: true } } })

    await daemon.close()
    t.same(
      h.logs.filter((l) => /"level":(50|60)/.test(l)),
      [],
      'no error logged',
    )
  },
)

t.test('the real command: node mode from the environment, as a DaemonSet sets it', { skip }, async (t) => {
  const h = await meshHarness(t)
  const api = await FakeKubeApi.start()
  t.teardown(() => api.close())
  const work = mkdtempSync(join(tmpdir(), 'kmesh-node-cli-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const a = await startPod(t, 'a', '10.210.1.2')
  api.namespaces.put({ metadata: { name: 'mesh', labels: { [MODE]: 'kmesh' } } })
  api.pods.put(podObject('mesh', 'a', a.ip))
  h.writeMesh(
    meshYaml(
      [{ name: 'backend', ip: BACKEND, services: { s: { 80: 18080 } } }],
      [{ name: 's', vips: [VIP], ports: { 80: 18080 } }],
    ),
  )
  const socket = join(work, 'cni.sock')
  const d = spawnDaemon(['--pin-root', h.pinRoot, '--state-dir', h.stateDir, '--log-format', 'json'], undefined, {
    LOCAL_XDS_PATH: h.meshFile,
    KMESH_CGROUP: h.cgroup,
    KMESH_NODE_MODE: 'true',
    NODE_NAME: NODE,
    KMESH_KUBECONFIG: api.kubeconfig,
    KMESH_CNI_SOCKET: socket,
  })
  t.teardown(() => d.stop())
  await d.next(/node: pod enrolled/)
  t.ok(statSync(socket).isSocket(), 'the kmesh-cni socket listens')
  t.equal(statSync(socket).mode & 0o777, 0o600)
  t.same(
    await h.probe([`${VIP}:80`], 2, { netnsPath: a.netnsPath }),
    { [`${VIP}:80`]: { backend: 2 } },
    'the labelled pod is redirected',
  )
  t.equal(await d.stop(), 0, 'a clean stop')
  t.notOk(existsSync(socket), 'the socket is removed')
  t.notOk(existsSync(join(h.pinRoot, 'links')), 'detached and unpinned')
})
