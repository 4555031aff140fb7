/**
 * kmesh-cni chained after Debian's real CNI plugins (containernetworking-plugins: bridge + host-local, and loopback),
 * invoked as a container runtime invokes them (test/support/cni-runtime.ts), on the real kernel:
 *  - a "node" network namespace created for the test holds the bridge and the host ends of the veths; every plugin
 *    runs inside it and inside the test's cgroup (the stand-in for the node's root cgroup, where the daemon's
 *    connect programs are attached), so the pods' addresses exist only in namespaces this test creates;
 *  - the conflist is a temporary file patched by our installer, the plugins are in a temporary CNI bin dir;
 *  - the daemon runs in local mode on that cgroup with a mesh whose one backend is a pod, and our CNI server
 *    decides by pod name.
 * Asserted: an enrolled pod's netns cookie is in km_manage and its connects to the VIP reach the backend pod; a
 * refused pod is not enrolled and reaches the VIP's own sentinel; DEL unenrols and the chain frees the address;
 * with the CNI server down ADD still creates the pod, unenrolled; CHECK, VERSION and an error answer per the spec.
 * Addresses: pods 10.244.77.0/24 on bridge kmcni77 and fd00:77::/64 on kmcni77v6, VIP 10.96.77.10 (a sentinel on the node namespace's lo).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { type CniPod, type CniServer, installCni, readConfig, startCniServer } from '../src/cni/index.js'
import { ChainRunner, type NetworkList, pluginBinary, runPlugin } from './support/cni-runtime.js'
import { type Harness, meshHarness, meshYaml } from './support/mesh-harness.js'

const DEBIAN_CNI = '/usr/lib/cni'
const skip = privilegedSkip(
  'BPF_PROG_TYPE_CGROUP_SOCK_ADDR connect4 attached by BPF links (kernel >= 5.7), SO_NETNS_COOKIE (kernel >= 5.14), a cgroup v2 mount, bpffs, network namespaces, veth and bridge devices',
  () => {
    if (!['bridge', 'host-local', 'loopback'].every((p) => existsSync(join(DEBIAN_CNI, p))))
      return `no ${DEBIAN_CNI}/{bridge,host-local,loopback}: apt-get install containernetworking-plugins (scripts/setup.sh)`
    try {
      execFileSync('python3', ['-c', ''])
    } catch {
      return 'no python3 (it reads a namespace cookie with getsockopt SO_NETNS_COOKIE)'
    }
    return undefined
  },
)

const TAG = `kmesh-test-cni-${process.pid}`
const VIP = '10.96.77.10'
const SUBNET = '10.244.77.0/24'

/** An HTTP server inside a network namespace answering its own name (the netns twin of demo/echo-servers.ts). */
const ECHO = `
import { createServer } from 'node:http'
const [name, host, port] = process.argv.slice(1)
createServer((req, res) => { res.setHeader('connection', 'close'); res.end(name) }).listen(Number(port), host, () => console.log('listening'))
`

/** The netns cookie the connect hook keys km_manage with, read from inside the namespace (SO_NETNS_COOKIE = 71). */
function netnsCookieKey(netnsPath: string): string {
  const cookie = execFileSync(
    'nsenter',
    [
      `--net=${netnsPath}`,
      'python3',
      '-c',
      'import socket; print(socket.socket().getsockopt(socket.SOL_SOCKET, 71, 8).hex())',
    ],
    { encoding: 'utf8' },
  ).trim()
  return cookie + '00'.repeat(8) // struct manager_key: the cookie in bytes 0..7, the rest zero
}

interface Teardown {
  teardown(fn: () => unknown): void
}

function manageKeys(h: Harness): string[] {
  return [...h.daemon!.dataplane.maps.manage.keys()].map((k) => k.toString('hex'))
}

function netnsAdd(t: Teardown, name: string): string {
  execFileSync('ip', ['netns', 'add', name])
  t.teardown(() => {
    try {
      execFileSync('ip', ['netns', 'del', name])
    } catch {
      /* already gone */
    }
  })
  return `/run/netns/${name}`
}

async function echoIn(t: Teardown, netnsPath: string, name: string, host: string, port: number): Promise<void> {
  const child: ChildProcess = spawn(
    'nsenter',
    [`--net=${netnsPath}`, process.execPath, '--input-type=module', '-e', ECHO, name, host, String(port)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  t.teardown(() => {
    child.kill()
  })
  await new Promise((resolve, reject) => {
    child.stdout!.once('data', resolve)
    child.once('exit', (code) => reject(new Error(`echo server ${name} in ${netnsPath} exited ${code}`)))
  })
}

t.test(
  'kmesh-cni chained after bridge + host-local enrols, refuses, unenrols and survives a missing daemon',
  { skip },
  async (t) => {
    const h = await meshHarness(t)
    const work = mkdtempSync(join(tmpdir(), `${TAG}-`))
    t.teardown(() => rmSync(work, { recursive: true, force: true }))
    const binDir = join(work, 'bin')
    const confDir = join(work, 'net.d')
    const ipamDir = join(work, 'ipam')
    mkdirSync(binDir)
    mkdirSync(confDir)
    for (const p of ['bridge', 'host-local', 'loopback']) symlinkSync(join(DEBIAN_CNI, p), join(binDir, p))

    // The node's network: one bridge conflist, then our installer chains kmesh-cni after it.
    const socketPath = join(work, 'cni.sock')
    const conflist = join(confDir, '10-kmesh-test.conflist')
    writeFileSync(
      conflist,
      JSON.stringify({
        cniVersion: '1.0.0',
        name: TAG,
        plugins: [
          {
            type: 'bridge',
            bridge: 'kmcni77',
            isGateway: true,
            ipMasq: false,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: SUBNET }]],
              routes: [{ dst: '0.0.0.0/0' }],
              dataDir: ipamDir,
            },
          },
        ],
      }),
    )
    const installed = installCni({ binDir, confDir, socketPath, pluginBinary: pluginBinary() })
    t.equal(installed.confFile, conflist)
    const list = readConfig(conflist) as unknown as NetworkList
    t.same(
      list.plugins.map((p) => p.type),
      ['bridge', 'kmesh-cni'],
      'the chain the runtime reads: bridge, then kmesh-cni',
    )

    const nodeNetns = netnsAdd(t, `${TAG}-node`)
    execFileSync('nsenter', [`--net=${nodeNetns}`, 'ip', 'link', 'set', 'lo', 'up'])
    execFileSync('nsenter', [`--net=${nodeNetns}`, 'ip', 'addr', 'add', `${VIP}/32`, 'dev', 'lo'])
    await echoIn(t, nodeNetns, 'untouched', VIP, 80) // what a connect the hook leaves alone reaches
    const place = { cgroupPath: h.cgroup, netnsPath: nodeNetns }

    // The daemon's CNI server: decides by pod name, records the plugin's outcomes.
    const enrolNames = new Set(['client', 'client6', 'late'])
    const outcomes: [CniPod, boolean, string][] = []
    let server: CniServer | undefined
    const startServer = async (): Promise<void> => {
      server = await startCniServer({
        socketPath,
        decide: (pod) =>
          enrolNames.has(pod.podName)
            ? { enrol: true, reason: 'test: enrol' }
            : { enrol: false, reason: 'test: not managed' },
        onResult: (...o) => outcomes.push(o),
        log: { info() {}, warn() {}, debug() {} },
      })
    }
    await startServer()
    t.teardown(() => server?.close())

    /** A pod: its netns, then loopback and the network list run as a runtime runs them for a sandbox. */
    const pods: ChainRunner[] = []
    t.teardown(async () => {
      for (const p of pods.reverse()) if (p.cached) await p.del().catch(() => {})
    })
    const addPod = async (
      name: string,
      network: NetworkList = list,
    ): Promise<{ chain: ChainRunner; netns: string; ip: string; ms: number }> => {
      const netns = netnsAdd(t, `${TAG}-${name}`)
      const call = {
        containerId: `${TAG}-${name}`,
        netns,
        ifname: 'eth0',
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=${name};K8S_POD_UID=uid-${name}`,
      }
      const lo = await runPlugin(
        join(binDir, 'loopback'),
        { ...call, ifname: 'lo', command: 'ADD', path: binDir },
        JSON.stringify({ cniVersion: '1.0.0', name: 'cni-loopback', type: 'loopback' }),
        place,
      )
      t.equal(lo.code, 0, `${name}: loopback ADD`)
      const chain = new ChainRunner(network, binDir, call, place)
      pods.push(chain)
      const started = performance.now()
      const result = (await chain.add()) as { ips: { address: string }[] }
      const ms = performance.now() - started
      return { chain, netns, ip: result.ips[0]!.address.split('/')[0]!, ms }
    }
    const probe = async (netns: string): Promise<Record<string, number>> =>
      (await h.probe([`${VIP}:80`], 10, { netnsPath: netns }))[`${VIP}:80`]!

    // The backend is a pod too (not managed): the mesh points the VIP at its address.
    const backend = await addPod('backend')
    t.match(backend.ip, /^10\.244\.77\./, `host-local gave the backend ${backend.ip}`)
    await echoIn(t, backend.netns, 'backend', '0.0.0.0', 18080)
    h.writeMesh(
      meshYaml(
        [{ name: 'backend', ip: backend.ip, services: { web: { 80: 18080 } } }],
        [{ name: 'web', vips: [VIP], ports: { 80: 18080 } }],
      ),
    )
    await h.start()
    const before = manageKeys(h)

    const client = await addPod('client')
    const clientKey = netnsCookieKey(client.netns)
    t.ok(manageKeys(h).includes(clientKey), 'an enrolled pod: its netns cookie is in km_manage')
    t.same(manageKeys(h).length, before.length + 1, 'one entry more')
    t.match(outcomes.at(-1), [{ command: 'ADD', podName: 'client' }, true, /refused by the hook/], 'the daemon is told')
    t.same(await probe(client.netns), { backend: 10 }, "the enrolled pod's connects to the VIP reach the backend pod")

    // A pod with IPv6 only: the plugin uses the IPv6 control address ::2 (Kmesh's rule), the connect6 hook enrols it.
    const v6: NetworkList = {
      ...list,
      name: `${TAG}-v6`,
      plugins: [
        {
          type: 'bridge',
          bridge: 'kmcni77v6',
          isGateway: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: 'fd00:77::/64' }]], dataDir: ipamDir },
        },
        list.plugins[1]!,
      ],
    }
    const client6 = await addPod('client6', v6)
    t.match(client6.ip, /^fd00:77::/, `host-local gave the IPv6-only pod ${client6.ip}`)
    t.ok(manageKeys(h).includes(netnsCookieKey(client6.netns)), 'the IPv6-only pod is enrolled')
    t.match(outcomes.at(-1), [{ podName: 'client6' }, true, /control connect to ::2:929 refused by the hook/])
    await client6.chain.del()
    t.notOk(manageKeys(h).includes(netnsCookieKey(client6.netns)), 'and unenrolled by DEL')
    t.match(outcomes.at(-1), [{ command: 'DEL', podName: 'client6' }, false, /::2:930 refused by the hook/])

    const other = await addPod('other')
    t.notOk(manageKeys(h).includes(netnsCookieKey(other.netns)), 'a refused pod is not enrolled')
    t.same(manageKeys(h).length, before.length + 1)
    t.same(await probe(other.netns), { untouched: 10 }, "a refused pod's connects are left alone")
    t.not(outcomes.at(-1)?.[0].podName, 'other', 'no control connect, no outcome')

    await client.chain.check()
    t.same(
      client.chain.runs.filter((r) => r.command === 'CHECK').map((r) => [r.plugin, r.run.code, r.run.stdout]),
      [
        ['bridge', 0, ''],
        ['kmesh-cni', 0, ''],
      ],
      'CHECK through the chain: every plugin exits 0 with no output',
    )

    for (const p of ['bridge', 'kmesh-cni']) {
      const v = await runPlugin(join(binDir, p), { command: 'VERSION', path: binDir }, '{"cniVersion":"1.0.0"}')
      t.equal(JSON.parse(v.stdout).cniVersion, '1.0.0', `${p} VERSION answers in the asked version`)
      t.ok(JSON.parse(v.stdout).supportedVersions.includes('1.0.0'), `${p} speaks 1.0.0`)
    }

    // An ADD told to enrol a namespace that does not exist: a CNI error object, code 3, non-zero exit.
    const bad = await runPlugin(
      join(binDir, 'kmesh-cni'),
      {
        command: 'ADD',
        containerId: `${TAG}-ghost`,
        netns: `/run/netns/${TAG}-ghost`,
        ifname: 'eth0',
        args: 'K8S_POD_NAME=client',
        path: binDir,
      },
      JSON.stringify({ ...list.plugins[1], cniVersion: '1.0.0', name: TAG, prevResult: client.chain.cached }),
      place,
    )
    t.not(bad.code, 0)
    t.same(JSON.parse(bad.stdout), {
      cniVersion: '1.0.0',
      code: 3,
      msg: "the pod's network namespace does not exist",
      details: `/run/netns/${TAG}-ghost`,
    })

    await client.chain.del()
    t.notOk(manageKeys(h).includes(clientKey), 'DEL unenrols: the cookie is gone from km_manage')
    t.match(outcomes.at(-1), [{ command: 'DEL', podName: 'client' }, false, /930 refused by the hook/])
    t.notOk(readdirSync(join(ipamDir, TAG)).includes(client.ip), 'and the chain released the address')

    // The daemon's CNI server is down: the pod is still created, with its address, and is not enrolled.
    await server!.close()
    const late = await addPod('late')
    const lateRun = late.chain.runs.find((r) => r.plugin === 'kmesh-cni')!.run
    t.equal(lateRun.code, 0, 'ADD succeeds with the daemon down')
    t.match(late.ip, /^10\.244\.77\./, `the pod has its address ${late.ip}`)
    t.match(lateRun.stderr, /No such file or directory; the pod is not enrolled now/)
    t.notOk(manageKeys(h).includes(netnsCookieKey(late.netns)), 'not enrolled')
    t.same(await probe(late.netns), { untouched: 10 }, 'its connects are left alone until the reconciler enrols it')
    t.comment(`chain ADD: ${Math.round(client.ms)} ms with the daemon, ${Math.round(late.ms)} ms with its socket gone`)

    for (const p of [late, other, backend]) await p.chain.del()
    t.same(
      readdirSync(join(ipamDir, TAG)).filter((f) => f.startsWith('10.')),
      [],
      'every address is back in the pool',
    )
  },
)
