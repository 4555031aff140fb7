/**
 * The command line as an operator meets it: --version, help for explain, values checked at parse time (rc 2),
 * durations, and the node name from NODE_NAME when --node is absent (--node wins).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { spawnDaemon } from '../src/demo/daemon-process.js'
import { EXPLAIN_HELP, runExplain } from '../src/explain/command.js'
import { parseCli, parseDuration, UsageError } from '../src/cli.js'
import { resolveOptions, type DaemonOptions } from '../src/options.js'

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
const base = ['--mesh-file', 'm.yaml', '--cgroup', '/sys/fs/cgroup/x']

t.test('--version and -V print the package version; explain has its own help', async (t) => {
  for (const flag of ['--version', '-V']) {
    const d = spawnDaemon([flag])
    t.equal(await d.exited(), 0)
    t.equal(d.output().trim(), `@kmesh-ts/kmesh-daemon ${pkg.version}`, flag)
  }
  for (const argv of [
    ['explain', '--help'],
    ['help', 'explain'],
  ]) {
    const d = spawnDaemon(argv)
    t.equal(await d.exited(), 0, argv.join(' '))
    t.match(
      d.output(),
      /Usage:\n\s+kmesh-daemon explain \[--pin-root DIR\]/,
      `${argv.join(' ')} prints the explain help`,
    )
  }
  const out: string[] = []
  t.equal(runExplain(['-h'], { write: (s: string) => out.push(s) }), 0, 'explain -h')
  t.equal(out.join(''), EXPLAIN_HELP)
  const help = spawnDaemon(['--help'])
  t.equal(await help.exited(), 0)
  for (const flag of [
    '--lock-wait',
    '--force-cgroup',
    '--allow-root-cgroup',
    '--reload-settle',
    '--reload-max-wait',
    '--mesh-file-max-bytes',
    '--version',
    'SIGHUP',
    'NODE_NAME',
    'atomic rename',
  ]) {
    t.match(help.output(), flag, `--help tells about ${flag}`)
  }
})

t.test('values are checked at parse time with rc 2, naming the flag', async (t) => {
  const d = spawnDaemon([...base, '--log-level', 'verbose'])
  t.equal(await d.exited(), 2)
  t.equal(
    d.output().trim(),
    'kmesh-daemon: --log-level must be one of trace, debug, info, warn, error, got verbose',
    'one usage line, no stack trace',
  )
  for (const [argv, message] of [
    [['--lock-wait', '5 minutes'], /--lock-wait 5 minutes: expected a duration such as 500ms, 30s, 2m or 0/],
    [
      ['--reload-settle', '2s', '--reload-max-wait', '1s'],
      /--reload-max-wait \(1000 ms\) must not be shorter than --reload-settle \(2000 ms\)/,
    ],
    [['--mesh-file-max-bytes=-3'], /--mesh-file-max-bytes -3: expected a positive number of bytes/],
    [['--mesh-file-max-bytes', '1e9'], /--mesh-file-max-bytes 1e9: expected a positive number of bytes/],
  ] as const) {
    t.throws(() => parseCli([...base, ...argv], {}), Object.assign(new UsageError(), { message }))
  }
})

t.test('durations', async (t) => {
  t.equal(parseDuration('x', '500ms'), 500)
  t.equal(parseDuration('x', '30s'), 30000)
  t.equal(parseDuration('x', '1.5s'), 1500)
  t.equal(parseDuration('x', '2m'), 120000)
  t.equal(parseDuration('x', '0'), 0)
  t.equal(parseDuration('x', undefined), undefined, 'not given: the daemon applies the default')
  t.throws(() => parseDuration('x', '30'), /--x 30: expected a duration/)
  t.throws(() => parseDuration('x', '999h'), /at most 24 days/)
})

t.test('the node name comes from --node, else NODE_NAME, and the options say which', async (t) => {
  const opts = (argv: string[], env: Record<string, string>): DaemonOptions =>
    parseCli([...base, ...argv], env) as DaemonOptions
  t.match(opts([], { NODE_NAME: 'node-7' }), { nodeName: 'node-7', nodeNameSource: 'NODE_NAME' })
  t.match(opts(['--node', 'n1'], { NODE_NAME: 'node-7' }), { nodeName: 'n1', nodeNameSource: '--node' }, '--node wins')
  t.match(opts([], {}), { nodeName: undefined, nodeNameSource: undefined })
  t.match(opts([], { NODE_NAME: '' }), { nodeName: undefined }, 'an empty NODE_NAME is no name')
  t.match(
    opts([], {}),
    { lockWaitMs: undefined, reloadSettleMs: undefined, pinRoot: undefined },
    'a flag not given stays undefined',
  )
  t.match(
    resolveOptions(opts([], {})),
    {
      lockWaitMs: 0,
      reloadSettleMs: 1000,
      reloadMaxWaitMs: 5000,
      meshFileMaxBytes: 64 * 1024 * 1024,
      forceCgroup: false,
      allowRootCgroup: false,
    },
    'defaults',
  )
})

t.test('options given directly are checked and defaulted in one place (options.ts)', async (t) => {
  t.throws(() => resolveOptions({ cgroup: '/c' }), /exactly one of the options "meshFile" \(local mode\) and "xds"/)
  t.throws(() => resolveOptions({ cgroup: '/c', meshFile: 'm', xds: { address: 'x:1' } }), /exactly one of/)
  t.throws(() => resolveOptions({ cgroup: '', meshFile: 'm' }), /"cgroup" is required/)
  t.throws(
    () => resolveOptions({ cgroup: '/c', meshFile: 'm', reloadSettleMs: 9000 }),
    /"reloadMaxWaitMs" \(5000\) must not be shorter than "reloadSettleMs" \(9000\)/,
  )
  const r = resolveOptions({ cgroup: '/c', meshFile: 'm', pinRoot: '/sys/fs/bpf/x', watch: false })
  t.match(r, {
    pinRoot: '/sys/fs/bpf/x',
    watch: false,
    stateDir: '/var/lib/kmesh-ts',
    adminAddress: '127.0.0.1:15200',
    mapSizes: {},
    keepPinned: false,
  })
})
