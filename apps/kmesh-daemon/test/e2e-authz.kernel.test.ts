/**
 * Authorization end to end (issue 12 item 5): network namespaces on a bridge (all created here: a hub holding the
 * bridge, a server, three clients), the daemon managing the server's namespace with a mesh file whose policies it
 * compiles into the XDP maps and whose program it attaches to the server's interface. Real TCP clients:
 *  - allowed connections complete; denied ones fail with ECONNREFUSED at once (the program answers the SYN with
 *    a RST); the time to fail is measured and printed;
 *  - identities come from the mesh (source address → workload): frontend is allowed, batch is not, an address
 *    outside the mesh (no identity) is not;
 *  - a policy change takes effect on the next connection; an established connection is not cut;
 *  - traffic the daemon does not manage (client to client) is untouched; the counters are in the config dump.
 * Addresses 10.99.0.0/24 exist only inside these namespaces.
 */
import t from 'tap'
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { privilegedSkip, tempNetns } from '@kmesh-ts/testkit'
import { meshHarness } from './support/mesh-harness.js'

const skip = privilegedSkip(
  'XDP on veth (native, kernel >= 4.19) with XDP_TX, bpf_xdp_adjust_tail, LPM tries; cgroup v2 and bpffs for the daemon; network namespaces, veth pairs and a bridge (created inside namespaces of this test)',
)

interface AuthzDump {
  enforced: boolean
  policies: number
  attached: Array<{ ifname: string; mode: string }>
  counters: Record<string, { allow: number; deny: number; dryRunDeny: number }>
  totals: Record<string, number>
}

const IP = { server: '10.99.0.10', frontend: '10.99.0.11', batch: '10.99.0.12', stranger: '10.99.0.13' }

function meshFile(policies: string): string {
  const wl = (name: string, ns: string, sa: string, ip: string) =>
    [
      `- uid: c//v1/Pod/${ns}/${name}`,
      `  name: ${name}`,
      `  namespace: ${ns}`,
      `  serviceAccount: ${sa}`,
      `  workloadIps: [${ip}]`,
      `  services: {}`,
    ].join('\n')
  return [
    'workloads:',
    wl('server', 'app', 'server', IP.server),
    wl('frontend', 'app', 'frontend', IP.frontend),
    wl('batch', 'other', 'batch', IP.batch),
    'services: []',
    policies,
  ].join('\n')
}

const ALLOW_FRONTEND_8080 = `policies:
- name: frontend-only
  namespace: app
  scope: Namespace
  action: Allow
  dryRun: false
  rules:
  - - - principals: [!Exact cluster.local/ns/app/sa/frontend]
        destinationPorts: [8080]
`
const ALLOW_BATCH_DENY_FRONTEND = `policies:
- name: batch-only
  namespace: app
  scope: Namespace
  action: Allow
  dryRun: false
  rules:
  - - - namespaces: [!Exact other]
- name: no-frontend
  namespace: app
  scope: Namespace
  action: Deny
  dryRun: false
  rules:
  - - - serviceAccounts: [{namespace: app, serviceAccount: frontend}]
`

const ECHO_SERVER = `
import { createServer } from 'node:net'
const ports = process.argv.slice(1).map(Number)
let up = 0
for (const port of ports) createServer((s) => s.pipe(s)).listen(port, '0.0.0.0', () => { if (++up === ports.length) console.log('listening') })
`
/** One connect: prints `{"result":"ok"|CODE,"ms":N}`. */
const CONNECT = `
import { connect } from 'node:net'
const started = performance.now()
const s = connect({ host: process.argv[1], port: Number(process.argv[2]), timeout: 3000 })
const done = (result) => { console.log(JSON.stringify({ result, ms: Math.round((performance.now() - started) * 10) / 10 })); s.destroy() }
s.on('connect', () => s.write('hello'))
s.on('data', () => done('ok'))
s.on('timeout', () => done('TIMEOUT'))
s.on('error', (e) => done(e.code))
`
/** A held connection: echoes a line per stdin line; prints `closed` when the connection ends. */
const HOLD = `
import { connect } from 'node:net'
import { createInterface } from 'node:readline'
const s = connect({ host: process.argv[1], port: Number(process.argv[2]) })
s.on('connect', () => console.log('connected'))
s.on('data', (d) => console.log('echo:' + d.toString().trim()))
s.on('error', (e) => console.log('error:' + e.code))
s.on('close', () => console.log('closed'))
createInterface({ input: process.stdin }).on('line', (l) => s.write(l + '\\n'))
`

function nodeIn(netns: string, script: string, args: string[]): ChildProcessWithoutNullStreams {
  return spawn('nsenter', [`--net=${netns}`, process.execPath, '--input-type=module', '-e', script, ...args])
}

function firstLine(p: ChildProcessWithoutNullStreams, match = (_l: string) => true): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = ''
    const onData = (d: Buffer) => {
      buf += d.toString()
      for (const line of buf.split('\n').slice(0, -1)) {
        if (match(line)) {
          p.stdout.off('data', onData)
          resolve(line)
          return
        }
      }
    }
    p.stdout.on('data', onData)
    p.on('error', reject)
    p.on('close', (code) => reject(new Error(`exited ${code} before the expected line; stdout: ${buf}`)))
  })
}

async function connectFrom(netns: string, host: string, port: number): Promise<{ result: string; ms: number }> {
  const p = nodeIn(netns, CONNECT, [host, String(port)])
  return JSON.parse(await firstLine(p)) as { result: string; ms: number }
}

t.test('authorization at XDP on a veth: allow, RST, policy change, established connections', { skip }, async (t) => {
  // The namespaces: hub (bridge), server, frontend, batch, stranger.
  const hub = tempNetns()
  t.teardown(() => hub.close())
  hub.exec(['ip', 'link', 'add', 'br0', 'type', 'bridge'])
  hub.exec(['ip', 'link', 'set', 'br0', 'up'])
  const spaces: Record<keyof typeof IP, ReturnType<typeof tempNetns>> = {} as never
  for (const [i, [name, ip]] of Object.entries(IP).entries()) {
    const ns = tempNetns()
    t.teardown(() => ns.close())
    spaces[name as keyof typeof IP] = ns
    const peer = `az${i}h`
    hub.exec(['ip', 'link', 'add', peer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name])
    hub.exec(['ip', 'link', 'set', peer, 'master', 'br0', 'up'])
    ns.exec(['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0'])
    ns.exec(['ip', 'link', 'set', 'eth0', 'up'])
    ns.exec(['ip', 'link', 'set', 'lo', 'up'])
  }
  const path = (name: keyof typeof IP) => `/run/netns/${spaces[name].name}`

  const servers = [
    nodeIn(path('server'), ECHO_SERVER, ['8080', '9090']),
    nodeIn(path('stranger'), ECHO_SERVER, ['8080']),
  ]
  t.teardown(() => {
    for (const s of servers) s.kill()
  })
  for (const s of servers) await firstLine(s, (l) => l === 'listening')

  const h = await meshHarness(t)
  h.writeMesh(meshFile(ALLOW_FRONTEND_8080))
  const daemon = await h.start({ netnsPath: path('server'), adminAddress: '127.0.0.1:0', authzXdpMode: 'generic' })
  const dump = async () => {
    const res = await fetch(`${daemon.admin?.url}/debug/config_dump`)
    return (await res.json()) as { authz: AuthzDump }
  }

  await t.test('attached to the server namespace only', async (t) => {
    const line = h.logs.find((l) => l.includes('authorization attached'))
    t.ok(line, 'the daemon logs the attachment')
    t.match(line, /eth0/, 'to the server namespace interface')
    const { authz } = await dump()
    t.same(
      authz.attached.map((a) => `${a.ifname} ${a.mode}`),
      ['eth0 xdpgeneric'],
      'the dump lists the attachment (generic mode: the RST reaches the client through any peer)',
    )
    t.equal(authz.enforced, true, 'the policies are enforced')
  })

  await t.test('policy 1: only frontend, only port 8080', async (t) => {
    const ok = await connectFrom(path('frontend'), IP.server, 8080)
    t.equal(ok.result, 'ok', `frontend -> server:8080 allowed (${ok.ms} ms)`)
    const wrongPort = await connectFrom(path('frontend'), IP.server, 9090)
    t.equal(wrongPort.result, 'ECONNREFUSED', `frontend -> server:9090 refused by a RST (${wrongPort.ms} ms)`)
    const batch = await connectFrom(path('batch'), IP.server, 8080)
    t.equal(batch.result, 'ECONNREFUSED', `batch -> server:8080 refused (${batch.ms} ms)`)
    const stranger = await connectFrom(path('stranger'), IP.server, 8080)
    t.equal(stranger.result, 'ECONNREFUSED', `an address outside the mesh (no identity) refused (${stranger.ms} ms)`)
    t.ok(batch.ms < 100 && stranger.ms < 100, 'a denied client fails fast (RST, not a SYN timeout)')
    t.comment(`denied connect: ECONNREFUSED after ${batch.ms} ms and ${stranger.ms} ms`)
    const unmanaged = await connectFrom(path('frontend'), IP.stranger, 8080)
    t.equal(unmanaged.result, 'ok', 'client to client (no XDP there) is untouched')
  })

  await t.test('a policy change: next connection decided by the new set, established ones kept', async (t) => {
    const held = nodeIn(path('frontend'), HOLD, [IP.server, '8080'])
    t.teardown(() => held.kill())
    await firstLine(held, (l) => l === 'connected')
    held.stdin.write('one\n')
    await firstLine(held, (l) => l === 'echo:one')

    h.writeMesh(meshFile(ALLOW_BATCH_DENY_FRONTEND))
    await daemon.reload()
    const frontend = await connectFrom(path('frontend'), IP.server, 8080)
    t.equal(frontend.result, 'ECONNREFUSED', 'frontend is now denied on a new connection')
    const batch = await connectFrom(path('batch'), IP.server, 9090)
    t.equal(batch.result, 'ok', 'batch is now allowed (any port)')
    held.stdin.write('two\n')
    t.equal(
      await firstLine(held, (l) => l.startsWith('echo:') || l === 'closed'),
      'echo:two',
      'the established connection still works',
    )
  })

  await t.test('counters in the config dump', async (t) => {
    const { authz } = await dump()
    t.ok((authz.counters['app/no-frontend']?.deny ?? 0) >= 1, 'the DENY policy counted its denial')
    t.ok((authz.counters['app/batch-only']?.allow ?? 0) >= 1, 'the ALLOW policy counted its allow')
    t.ok(authz.totals.deniedRst >= 4, `denied SYNs answered with a RST: ${authz.totals.deniedRst}`)
    t.equal(authz.totals.broken, 0, 'no broken walk')
    t.equal(authz.policies, 2, 'two policies in the store')
  })
})
