// `kmesh-daemon dump | log-level | accesslog | version` against an admin endpoint (a fake daemon behind it).
import t from 'tap'
import { startAdmin, listOf } from '../src/admin.js'
import { runAdminCommand } from '../src/admin-cli.js'
import { main } from '../src/main.js'
import { createLogger } from '../src/log.js'
import { AccessLog } from '../src/metrics/access-log.js'

function sink() {
  const chunks: string[] = []
  return { chunks, write: (s: string) => chunks.push(s), text: () => chunks.join('') }
}

t.test('the subcommands print what the endpoint serves', async (t) => {
  const log = createLogger({ format: 'json', out: { write: () => true } as never })
  log.child({ component: 'ipsec' })
  const admin = await startAdmin('127.0.0.1:0', {
    ready: () => true,
    dump: () => ({ mode: 'local', ready: true }),
    lists: () => ({ workloads: listOf(() => [{ uid: 'a' }, { uid: 'b' }]) }),
    version: () => ({ name: '@kmesh-ts/kmesh-daemon', version: '0.1.0', node: 'v20', startedAt: 'then' }),
    log,
    accessLog: new AccessLog('off', { write: () => true }),
  })
  t.teardown(() => new Promise((r) => admin.close(r)))
  const address = admin.url.replace('http://', '')
  const run = async (cmd: Parameters<typeof runAdminCommand>[0], ...args: string[]) => {
    const out = sink()
    const err = sink()
    const rc = await runAdminCommand(cmd, [...args, '--admin-address', address], out, err, {})
    return { rc, out: out.text(), err: err.text() }
  }

  let r = await run('dump')
  t.equal(r.rc, 0)
  t.match(JSON.parse(r.out), { mode: 'local', workloads: { total: 2, items: [{ uid: 'a' }, { uid: 'b' }] } })
  r = await run('dump', '--only', 'workloads', '--offset', '1')
  t.same(JSON.parse(r.out), { workloads: { total: 2, offset: 1, limit: 1000, items: [{ uid: 'b' }] } })
  r = await run('dump', '--only', 'nope')
  t.equal(r.rc, 1)
  t.match(r.err, /400 GET \/config_dump: \?only=nope/)

  r = await run('log-level')
  t.equal(r.out, 'current log levels: default=info,ipsec=info\n')
  r = await run('log-level', 'ipsec:debug')
  t.equal(r.out, 'current log levels: default=info,ipsec=debug\n')
  r = await run('log-level', 'loud')
  t.equal(r.rc, 1)

  r = await run('accesslog', 'json')
  t.same(JSON.parse(r.out), { mode: 'json', lines: 0 })

  r = await run('version')
  t.equal(r.rc, 0)
  t.match(r.out, /^client: @kmesh-ts\/kmesh-daemon \S+\ndaemon: @kmesh-ts\/kmesh-daemon 0\.1\.0 /)
})

t.test('unreachable daemon, usage errors, help', async (t) => {
  const out = sink()
  const err = sink()
  t.equal(await runAdminCommand('dump', ['--admin-address', '127.0.0.1:1'], out, err, {}), 1)
  t.match(err.text(), /cannot reach the admin endpoint at 127\.0\.0\.1:1 .*is the daemon running/)
  // The address comes from the daemon's own variable when no flag is given.
  const err2 = sink()
  t.equal(await runAdminCommand('log-level', [], sink(), err2, { KMESH_ADMIN_ADDRESS: '127.0.0.1:2' }), 1)
  t.match(err2.text(), /at 127\.0\.0\.1:2/)
  const err3 = sink()
  t.equal(await runAdminCommand('dump', ['--bogus'], sink(), err3, {}), 2)
  t.match(err3.text(), /kmesh-daemon dump: Unknown option '--bogus'/)
  const write = process.stdout.write
  const printed: string[] = []
  process.stdout.write = ((s: string) => printed.push(s)) as never
  let rc: number
  try {
    rc = await main(['help', 'dump'])
  } finally {
    process.stdout.write = write
  }
  t.equal(rc, 0)
  t.match(printed.join(''), /kmesh-daemon log-level LOGGER:LEVEL/)
})
