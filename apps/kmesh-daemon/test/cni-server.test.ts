/**
 * The kmesh-cni binary against the daemon's socket server, without privileges (nothing here enters a network
 * namespace: the pods are refused or deleted): the CNI spec answers (VERSION, errors as CNI error JSON, prevResult
 * passed through byte for byte), the socket protocol, and what ADD does when the daemon is absent or silent.
 * The enrolment itself (setns + control connect) is in cni-plugin.kernel.test.ts.
 */
import { spawn } from 'node:child_process'
import { lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { type CniPod, startCniServer } from '../src/cni/index.js'
import { pluginBinary, runPlugin } from './support/cni-runtime.js'

const plugin = pluginBinary()
const quiet = { info() {}, warn() {}, debug() {} }

function workDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'kmesh-test-cni-srv-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A prevResult with what a careless scanner trips on: braces and quotes in strings, escapes, numbers, nesting. */
const PREV =
  '{ "cniVersion" : "1.0.0", "interfaces":[{"name":"eth0","mac":"0a:58:0a:f4:01:05","sandbox":"/var/run/netns/p}{\\"x"}],' +
  '"ips":[{"address":"10.244.1.5/24","gateway":"10.244.1.1","interface":0}],"routes":[{"dst":"0.0.0.0/0"}],' +
  '"dns":{"nameservers":["10.96.0.10"],"search":["d\\u00e9faut.svc"]},"x":[1.5e3,-0,true,false,null,{"prevResult":1}]}'

const config = (extra: Record<string, string> = {}): string =>
  `{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"kmesh-cni","args":{"prevResult":"not this one"},` +
  `${Object.entries(extra)
    .map(([k, v]) => `${JSON.stringify(k)}:${v},`)
    .join('')}"prevResult":${PREV}}`

const ARGS =
  'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=cart-7d;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1'

t.test('VERSION and the CNI error answers', async (t) => {
  const version = await runPlugin(plugin, { command: 'VERSION', path: '' }, '{"cniVersion":"0.4.0"}')
  t.equal(version.code, 0)
  t.same(JSON.parse(version.stdout), {
    cniVersion: '0.4.0',
    supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'],
  })
  const errors: [string, Parameters<typeof runPlugin>[1], string, number, RegExp][] = [
    ['no CNI_COMMAND', { command: '', path: '' }, config(), 4, /CNI_COMMAND/],
    ['an unknown command', { command: 'GC', path: '' }, config(), 4, /unknown CNI_COMMAND/],
    ['not JSON', { command: 'ADD', path: '' }, '{"cniVersion":"1.0.0",}', 6, /not a JSON object/],
    ['two objects', { command: 'ADD', path: '' }, '{"cniVersion":"1.0.0"} {}', 6, /not a JSON object/],
    ['no cniVersion', { command: 'ADD', path: '' }, '{"name":"n"}', 7, /no cniVersion/],
    ['an old cniVersion', { command: 'ADD', path: '' }, '{"cniVersion":"0.2.0"}', 1, /unsupported cniVersion/],
    ['no CNI_NETNS on ADD', { command: 'ADD', containerId: 'c', ifname: 'eth0', path: '' }, config(), 4, /NETNS/],
    [
      'kmeshSocket not a string',
      { command: 'ADD', containerId: 'c', netns: '/x', ifname: 'eth0', path: '' },
      config({ kmeshSocket: '3' }),
      7,
      /kmeshSocket/,
    ],
    [
      'CHECK without prevResult',
      { command: 'CHECK', containerId: 'c', netns: '/proc/self/ns/net', ifname: 'eth0', path: '' },
      '{"cniVersion":"1.0.0","name":"n","type":"kmesh-cni"}',
      7,
      /CHECK needs prevResult/,
    ],
    [
      'a prevResult that is not an object',
      { command: 'ADD', containerId: 'c', netns: '/x', ifname: 'eth0', path: '' },
      '{"cniVersion":"1.0.0","name":"n","type":"kmesh-cni","kmeshSocket":"/nowhere.sock","prevResult":[]}',
      7,
      /prevResult is not an object/,
    ],
    [
      'CHECK at 0.3.1',
      { command: 'CHECK', containerId: 'c', netns: '/proc/self/ns/net', ifname: 'eth0', path: '' },
      '{"cniVersion":"0.3.1","name":"n","type":"kmesh-cni","prevResult":{}}',
      1,
      /CHECK needs cniVersion 0.4.0/,
    ],
    [
      'CHECK of a namespace that is gone',
      { command: 'CHECK', containerId: 'c', netns: '/run/netns/kmesh-test-cni-gone', ifname: 'eth0', path: '' },
      config(),
      3,
      /network namespace does not exist/,
    ],
  ]
  for (const [what, call, input, code, msg] of errors) {
    const r = await runPlugin(plugin, call, input)
    t.not(r.code, 0, `${what}: a non-zero exit`)
    const e = JSON.parse(r.stdout) as Record<string, unknown>
    t.same(Object.keys(e), ['cniVersion', 'code', 'msg', 'details'], `${what}: a CNI error object on stdout`)
    t.equal(e.code, code, `${what}: code ${code}`)
    t.match(`${e.msg} ${e.details}`, msg)
  }
})

t.test('ADD asks the daemon; a refused pod is left alone and prevResult comes back byte for byte', async (t) => {
  const dir = workDir(t)
  const socketPath = join(dir, 'cni.sock')
  const asked: CniPod[] = []
  const results: unknown[] = []
  await using _server = await startCniServer({
    socketPath,
    decide: (pod) => {
      asked.push(pod)
      return { enrol: false, reason: 'namespace shop is not labelled istio.io/dataplane-mode=kmesh' }
    },
    onResult: (...r) => results.push(r),
    log: quiet,
  })
  t.equal(lstatSync(socketPath).mode & 0o777, 0o600, 'the socket is 0600')
  const call = { command: 'ADD', containerId: 'ctr-1', netns: '/run/netns/p1', ifname: 'eth0', args: ARGS, path: '' }
  const r = await runPlugin(plugin, call, config({ kmeshSocket: JSON.stringify(socketPath) }))
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout, `${PREV}\n`, 'the previous result, unchanged')
  t.same(asked, [
    {
      command: 'ADD',
      containerId: 'ctr-1',
      netns: '/run/netns/p1',
      ifname: 'eth0',
      podNamespace: 'shop',
      podName: 'cart-7d',
      podUid: 'u-1',
    },
  ])
  t.same(results, [], 'no control connect, so no outcome line')

  const first = await runPlugin(
    plugin,
    call,
    `{"cniVersion":"0.3.1","name":"n","type":"kmesh-cni","kmeshSocket":${JSON.stringify(socketPath)}}`,
  )
  t.equal(first.code, 0)
  t.same(
    JSON.parse(first.stdout),
    { cniVersion: '0.3.1', interfaces: [], ips: [], routes: [], dns: {} },
    'first in a chain: an empty result in the configured version',
  )
})

t.test('ADD succeeds when the daemon is absent or silent; the plugin gives up within 2 s', async (t) => {
  const dir = workDir(t)
  const call = { command: 'ADD', containerId: 'ctr-2', netns: '/run/netns/p2', ifname: 'eth0', args: ARGS, path: '' }
  const absent = await runPlugin(plugin, call, config({ kmeshSocket: JSON.stringify(join(dir, 'none.sock')) }))
  t.equal(absent.code, 0)
  t.equal(absent.stdout, `${PREV}\n`)
  t.match(absent.stderr, /ADD shop\/cart-7d .*none\.sock: No such file or directory; .*reconciler enrols it/)
  t.ok(absent.ms < 1000, `no socket: ${Math.round(absent.ms)} ms`)

  const silentPath = join(dir, 'silent.sock')
  const held: Socket[] = []
  const silent = createServer((c) => held.push(c.on('error', () => {}))) // accepts, answers nothing
  await new Promise<void>((resolve) => silent.listen(silentPath, resolve))
  t.teardown(() => {
    for (const c of held) c.destroy()
    return new Promise<void>((resolve) => silent.close(() => resolve()))
  })
  const slow = await runPlugin(plugin, call, config({ kmeshSocket: JSON.stringify(silentPath) }))
  t.equal(slow.code, 0)
  t.equal(slow.stdout, `${PREV}\n`)
  t.match(slow.stderr, /no answer within 2 s/)
  t.ok(slow.ms >= 1900 && slow.ms < 3000, `a silent daemon: ${Math.round(slow.ms)} ms`)
  t.comment(`ADD with no daemon socket: ${Math.round(absent.ms)} ms; with a silent daemon: ${Math.round(slow.ms)} ms`)
})

t.test('DEL of a pod whose namespace is gone succeeds and tells the daemon; DEL is idempotent', async (t) => {
  const dir = workDir(t)
  const socketPath = join(dir, 'cni.sock')
  const results: [CniPod, boolean, string][] = []
  let decided = 0
  await using _server = await startCniServer({
    socketPath,
    decide: () => {
      decided++
      return { enrol: true, reason: 'never asked on DEL' }
    },
    onResult: (...r) => results.push(r),
    log: quiet,
  })
  const call = { command: 'DEL', containerId: 'ctr-3', netns: join(dir, 'gone'), ifname: 'eth0', args: ARGS, path: '' }
  for (const round of [1, 2]) {
    const r = await runPlugin(plugin, call, config({ kmeshSocket: JSON.stringify(socketPath) }))
    t.equal(r.code, 0, `DEL ${round}: exit 0`)
    t.equal(r.stdout, '', 'no output')
  }
  const noNetns = await runPlugin(plugin, { ...call, netns: '' }, config({ kmeshSocket: JSON.stringify(socketPath) }))
  t.equal(noNetns.code, 0, 'DEL without CNI_NETNS: exit 0')
  t.equal(decided, 0, 'DEL is not decided')
  t.equal(results.length, 3)
  t.same(results[0]![0], {
    command: 'DEL',
    containerId: 'ctr-3',
    netns: join(dir, 'gone'),
    ifname: 'eth0',
    podNamespace: 'shop',
    podName: 'cart-7d',
    podUid: 'u-1',
  })
  t.equal(results[0]![1], false)
  t.match(results[0]![2], /No such file or directory.*nothing to unenrol/)
  t.match(results[2]![2], /no network namespace given/)
  const down = await runPlugin(plugin, call, config({ kmeshSocket: JSON.stringify(join(dir, 'down.sock')) }))
  t.equal(down.code, 0, 'DEL with the daemon down: exit 0')
})

t.test('the server: stale socket replaced, foreign file refused, bad input answered or dropped, close', async (t) => {
  const dir = workDir(t)
  const socketPath = join(dir, 'cni.sock')
  // A daemon killed by SIGKILL leaves its socket file behind.
  const killed = spawn(process.execPath, [
    '-e',
    `require('net').createServer().listen(process.argv[1], () => console.log('up'))`,
    socketPath,
  ])
  await new Promise((resolve) => killed.stdout.once('data', resolve))
  killed.kill('SIGKILL')
  await new Promise((resolve) => killed.once('exit', resolve))
  t.ok(lstatSync(socketPath).isSocket(), 'a stale socket file is there')

  const warnings: string[] = []
  const log = { ...quiet, warn: (_o: object, msg: string) => warnings.push(msg) }
  const server = await startCniServer({
    socketPath,
    decide: (pod) => {
      if (pod.podName === 'boom') throw new Error('no such namespace')
      return new Promise((resolve) => setTimeout(() => resolve({ enrol: false, reason: 'async' }), 10))
    },
    log,
    maxLineBytes: 512,
    idleTimeoutMs: 300,
  })
  const talk = (text: string): Promise<string> =>
    new Promise((resolve) => {
      const c = connect(socketPath)
      let out = ''
      c.on('data', (d) => (out += d))
      c.on('close', () => resolve(out))
      c.on('error', () => resolve(out))
      c.write(text)
    })
  const pod = { containerId: 'c', netns: '/n', ifname: 'eth0', podNamespace: 'ns', podName: 'p', podUid: 'u' }
  t.same(JSON.parse(await talk(`${JSON.stringify({ command: 'CHECK', ...pod })}\n`)), { enrol: false, reason: 'async' })
  t.same(JSON.parse(await talk(`${JSON.stringify({ command: 'ADD', ...pod, podName: 'boom' })}\n`)), {
    enrol: false,
    reason: 'decide failed: no such namespace',
  })
  t.same(JSON.parse(await talk('{"command":"ADD"}\n')), {
    enrol: false,
    reason: 'bad request: containerId must be a string',
  })
  t.same(JSON.parse(await talk('nonsense\n')), { enrol: false, reason: 'bad request: not JSON' })
  t.equal(await talk('x'.repeat(600)), '', 'an over-long line is dropped unanswered')
  t.equal(await talk('{"command":'), '', 'a connection that stalls is dropped after the idle timeout')
  t.ok(warnings.includes('CNI line too long; connection dropped'))
  t.ok(warnings.includes('CNI connection idle too long; dropped'))

  await server.close()
  await server.close()
  t.throws(() => lstatSync(socketPath), { code: 'ENOENT' }, 'close removes the socket')

  // A newer daemon that took the path over keeps it when the older one closes.
  const older = await startCniServer({ socketPath, decide: () => ({ enrol: false, reason: '' }), log: quiet })
  const newer = await startCniServer({ socketPath, decide: () => ({ enrol: true, reason: 'newer' }), log: quiet })
  await older.close()
  t.ok(lstatSync(socketPath).isSocket(), "the older daemon's close leaves the newer daemon's socket")
  t.same(JSON.parse(await talk(`${JSON.stringify({ command: 'CHECK', ...pod })}\n`)).reason, 'newer')
  await newer.close()

  writeFileSync(socketPath, 'precious')
  await t.rejects(startCniServer({ socketPath, decide: () => ({ enrol: false, reason: '' }), log: quiet }), {
    message: `CNI socket path ${socketPath} exists and is not a socket; refusing to replace it`,
  })
  t.equal(readFileSync(socketPath, 'utf8'), 'precious')
})

t.test("the plugin's JSON scanner accepts and refuses what JSON.parse does", async (t) => {
  const values = [
    '0',
    '-0',
    '01',
    '1.',
    '.5',
    '-',
    '1e',
    '1e+5',
    '2.5E-3',
    '+1',
    'tru',
    'true',
    'nul',
    'null',
    '"a\\x"',
    '"\\u12"',
    '"\\u00e9\\ud83d\\ude00"',
    '"tab\there"',
    '"\\/\\b\\f\\n\\r\\t"',
    '[1,]',
    '[,1]',
    '{"a":1,}',
    '{"a" 1}',
    '{1:2}',
    '[[[]]]',
    '{"}":"{","\\"":["]"]}',
    '"unterminated',
    '[1 2]',
    '"\u00e9"',
  ]
  let agreed = 0
  for (const v of values) {
    const text = `{"cniVersion":"1.0.0","x":${v}}`
    let valid = true
    try {
      JSON.parse(text)
    } catch {
      valid = false
    }
    const r = await runPlugin(plugin, { command: 'ADD', path: '' }, text)
    // A valid config gets as far as the missing CNI_CONTAINERID (code 4); an invalid one stops at decoding (code 6).
    const code = (JSON.parse(r.stdout) as { code: number }).code
    t.equal(code, valid ? 4 : 6, `${v}: ${valid ? 'accepted' : 'refused'}`)
    if (code === (valid ? 4 : 6)) agreed++
  }
  const deep = (n: number): string => `{"cniVersion":"1.0.0","x":${'['.repeat(n)}${']'.repeat(n)}}`
  t.equal(JSON.parse((await runPlugin(plugin, { command: 'ADD', path: '' }, deep(63))).stdout).code, 4, '64 levels')
  t.equal(JSON.parse((await runPlugin(plugin, { command: 'ADD', path: '' }, deep(200))).stdout).code, 6, 'too deep')
  t.equal(agreed, values.length)
})
