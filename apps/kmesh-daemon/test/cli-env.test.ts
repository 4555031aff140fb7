/**
 * Configuration the Kubernetes way: every flag has an environment variable (Kmesh's and Istio's names where they
 * exist, KMESH_<FLAG> for ours), a flag wins over its variable, a bad value is refused naming the variable,
 * --help lists each variable, and the README's table is the flag table (src/cli-flags.ts), row for row.
 */
import t, { type Test } from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FLAGS, flagsTableMarkdown, flagUsage, type FlagSpec } from '../src/cli-flags.js'
import { HELP, parseCli, UsageError } from '../src/cli.js'
import { EXPLAIN_HELP, parseExplainArgs } from '../src/explain/command.js'
import type { DaemonOptions } from '../src/options.js'
import { spawnDaemon } from '../src/demo/daemon-process.js'

const local = ['--mesh-file', 'm.yaml', '--cgroup', '/sys/fs/cgroup/x']
const opts = (argv: string[], env: Record<string, string>): DaemonOptions => parseCli(argv, env) as DaemonOptions
/** parseCli refuses with a UsageError (main prints it and exits 2) whose message matches. */
const refuses = (t: Test, argv: string[], env: Record<string, string>, message: RegExp): void => {
  let err: unknown
  try {
    parseCli(argv, env)
  } catch (e) {
    err = e
  }
  t.ok(err instanceof UsageError, `${JSON.stringify(env)}: a usage error`)
  t.match((err as Error | undefined)?.message, message)
}

/** Names taken from Kmesh's DaemonSet or from ztunnel, because they mean the same setting there. */
const BORROWED: Record<string, string> = {
  'mesh-file': 'LOCAL_XDS_PATH', // ztunnel: its local config file, the format of our mesh file
  'xds-address': 'XDS_ADDRESS', // Kmesh and ztunnel
  'xds-ca-file': 'XDS_ROOT_CA', // ztunnel: the root cert for istiod's TLS (a file here)
  node: 'NODE_NAME', // Kmesh and ztunnel (downward API spec.nodeName)
  network: 'NETWORK', // ztunnel
}

t.test('every flag has a variable: a borrowed name where one exists, else KMESH_<FLAG>', async (t) => {
  const seen = new Set<string>()
  for (const f of FLAGS) {
    if (f.name === 'help' || f.name === 'version') {
      t.equal(f.env, null, `--${f.name} is not a setting`)
      continue
    }
    const expected = BORROWED[f.name] ?? `KMESH_${f.name.toUpperCase().replaceAll('-', '_')}`
    t.equal(f.env, expected, `--${f.name}`)
    t.notOk(seen.has(f.env!), `${f.env} names one flag`)
    seen.add(f.env!)
  }
})

/**
 * A value each flag accepts, and what else the command line needs for it to be accepted (a flag added with
 * requirements of its own gets its line here; the default is a path in local mode).
 */
function sample(f: FlagSpec): { base: string[]; values: string[] } {
  const ipsec = ['--ipsec-key-file', '/k.json', '--node', 'n1', '--ipsec-address', '192.168.0.1']
  const ipsecCidr = ['--ipsec-pod-cidr', '10.244.1.0/24']
  const kube = ['--node-info-source', 'kubernetes']
  const nodeMode = [...local, '--node', 'n1', '--node-mode']
  const bases: Record<string, string[]> = {
    'node-mode': [...local, '--node', 'n1'],
    'node-accept-ambient': nodeMode,
    'node-resync': nodeMode,
    'proc-root': nodeMode,
    'cni-socket': nodeMode,
    'cni-bin-dir': [...nodeMode, '--cni-conf-dir', '/etc/cni/net.d'],
    'cni-conf-dir': [...nodeMode, '--cni-bin-dir', '/opt/cni/bin'],
    'xds-ca-file': ['--xds-address', 'istiod:15012', '--cgroup', '/c'],
    'xds-token-file': ['--xds-address', 'istiod:15012', '--cgroup', '/c'],
    'xds-insecure': ['--xds-address', 'istiod:15012', '--cgroup', '/c'],
    'xds-max-message-bytes': ['--xds-address', 'istiod:15012', '--cgroup', '/c'],
    'mesh-file': ['--cgroup', '/c'],
    'xds-address': ['--cgroup', '/c'],
    cgroup: ['--mesh-file', 'm.yaml'],
    'ipsec-key-file': [
      ...local,
      '--node',
      'n1',
      '--ipsec-address',
      '192.168.0.1',
      ...ipsecCidr,
      '--node-info-dir',
      '/d',
    ],
    'node-info-source': [...local, ...ipsec, ...ipsecCidr],
    'node-info-dir': [...local, ...ipsec, ...ipsecCidr],
    kubeconfig: [...local, ...ipsec, ...ipsecCidr, ...kube],
    'node-info-namespace': [...local, ...ipsec, ...ipsecCidr, ...kube],
    'node-info-delete-on-exit': [...local, ...ipsec, ...ipsecCidr, ...kube],
    'ipsec-allow-plaintext': [...local, ...ipsec, ...ipsecCidr, '--node-info-dir', '/d'],
    'ipsec-address': [...local, '--ipsec-key-file', '/k.json', '--node', 'n1', ...ipsecCidr, '--node-info-dir', '/d'],
    'ipsec-pod-cidr': [...local, ...ipsec, '--node-info-dir', '/d'],
    'ipsec-netns': [...local, ...ipsec, ...ipsecCidr, '--node-info-dir', '/d'],
    'ipsec-encrypt-dev': [...local, ...ipsec, ...ipsecCidr, '--node-info-dir', '/d'],
    'ipsec-decrypt-dev': [...local, ...ipsec, ...ipsecCidr, '--node-info-dir', '/d'],
  }
  const values: Record<string, string[]> = {
    'xds-address': ['istiod.istio-system.svc:15012'],
    'node-resync': ['30s'],
    'lock-wait': ['30s'],
    'reload-settle': ['2s'],
    'reload-max-wait': ['9s'],
    'mesh-file-max-bytes': ['4096'],
    'xds-max-message-bytes': ['419430400'],
    'log-format': ['json'],
    'log-level': ['debug'],
    'admin-address': ['127.0.0.1:15999'],
    'metrics-address': ['127.0.0.1:15998'],
    'access-log': ['json'],
    'map-size': ['km_backend=7', 'km_service=9'],
    'map-size-max': ['km_backend=700', 'km_service=900'],
    'authz-xdp-mode': ['native'],
    'node-info-source': ['kubernetes'],
    'node-info-namespace': ['mesh'],
    'ipsec-address': ['192.168.0.1', 'fd00::1'],
    'ipsec-pod-cidr': ['10.244.1.0/24', 'fd00:10::/64'],
    'ipsec-encrypt-dev': ['veth1', 'veth2'],
    'ipsec-decrypt-dev': ['eth0'],
  }
  return { base: bases[f.name] ?? local, values: values[f.name] ?? [`/some/${f.name}`] }
}

t.test('each variable gives what its flag gives', async (t) => {
  for (const f of FLAGS) {
    if (!f.env) continue
    const { base, values } = sample(f)
    const argv = f.type === 'boolean' ? [`--${f.name}`] : values.flatMap((v) => [`--${f.name}`, v])
    const envValue = f.type === 'boolean' ? 'true' : values.join(',')
    const fromFlag = opts([...base, ...argv], {})
    const fromEnv = opts(base, { [f.env]: envValue })
    // Only where values came from may differ (the start-up log says which).
    t.same(
      { ...fromEnv, nodeNameSource: 0, fromEnvironment: 0 },
      { ...fromFlag, nodeNameSource: 0, fromEnvironment: 0 },
      `${f.env}=${envValue}`,
    )
    t.same(fromEnv.fromEnvironment, { [`--${f.name}`]: f.env }, `the options say --${f.name} came from ${f.env}`)
    t.equal(fromFlag.fromEnvironment, undefined)
    let without: DaemonOptions | string
    try {
      without = opts(base, {})
    } catch (err) {
      without = (err as Error).message
    }
    t.notSame(without, fromFlag, `--${f.name} changes the options (the comparison means something)`)
  }
})

t.test('a flag wins over its variable; empty and false are not given', async (t) => {
  t.match(opts([...local, '--log-level', 'debug'], { KMESH_LOG_LEVEL: 'error' }), { logLevel: 'debug' })
  t.same(
    opts([...local, '--map-size', 'km_backend=5'], { KMESH_MAP_SIZE: 'km_service=9,km_backend=7' }).mapSizes,
    { km_backend: 5 },
    'a repeatable flag replaces the whole list of its variable',
  )
  t.match(opts([...local, '--node', 'n1'], { NODE_NAME: 'node-7' }), { nodeName: 'n1', nodeNameSource: '--node' })
  t.match(opts(local, { NODE_NAME: 'node-7' }), { nodeName: 'node-7', nodeNameSource: 'NODE_NAME' })
  t.match(opts(local, { NODE_NAME: '', KMESH_PIN_ROOT: '' }), { nodeName: undefined, pinRoot: undefined })
  t.equal(opts(local, { KMESH_ADMIN_ADDRESS: '' }).adminAddress, '', "empty KMESH_ADMIN_ADDRESS: --admin-address ''")
  t.equal(opts(local, {}).adminAddress, undefined)
  for (const v of ['false', '0', 'FALSE'])
    t.match(opts(local, { KMESH_KEEP_PINNED: v, KMESH_NO_WATCH: v }), { keepPinned: undefined, watch: undefined }, v)
  t.match(opts(local, { KMESH_KEEP_PINNED: 'True', KMESH_NO_WATCH: '1' }), { keepPinned: true, watch: false })
  t.match(opts(local, { NETWORK: 'net1' }), { network: 'net1' })
  t.match(opts([...local, '--network', 'net2'], { NETWORK: 'net1' }), { network: 'net2' })
  t.match(opts([...local, '--network', ''], { NETWORK: 'net1' }), { network: '' }, "--network '' wins too")
})

t.test('a malformed value is refused naming the variable', async (t) => {
  refuses(t, local, { KMESH_KEEP_PINNED: 'maybe' }, /^KMESH_KEEP_PINNED=maybe: expected true or false \(or 1 or 0\)$/)
  refuses(t, local, { KMESH_LOCK_WAIT: '5 minutes' }, /^KMESH_LOCK_WAIT=5 minutes: expected a duration such as 500ms/)
  refuses(t, local, { KMESH_LOG_LEVEL: 'verbose' }, /^KMESH_LOG_LEVEL must be one of trace, debug, info, warn, error/)
  refuses(t, local, { KMESH_LOG_FORMAT: 'xml' }, /^KMESH_LOG_FORMAT must be text or json, got xml$/)
  refuses(t, local, { KMESH_MAP_SIZE: 'km_backend=1,oops' }, /^KMESH_MAP_SIZE=oops: expected NAME=N/)
  refuses(t, local, { KMESH_MESH_FILE_MAX_BYTES: '-3' }, /^KMESH_MESH_FILE_MAX_BYTES=-3: expected a positive number/)
  refuses(
    t,
    local,
    { KMESH_RELOAD_SETTLE: '2s', KMESH_RELOAD_MAX_WAIT: '1s' },
    /^KMESH_RELOAD_MAX_WAIT \(1000 ms\) must not be shorter than KMESH_RELOAD_SETTLE \(2000 ms\)$/,
  )
  refuses(
    t,
    [...local, '--reload-settle', '2s'],
    { KMESH_RELOAD_MAX_WAIT: '1s' },
    /^KMESH_RELOAD_MAX_WAIT \(1000 ms\) must not be shorter than --reload-settle \(2000 ms\)$/,
  )
  refuses(t, local, { KMESH_IPSEC_ADDRESS: '192.168.0.1' }, /^KMESH_IPSEC_ADDRESS needs --ipsec-key-file/)
  refuses(
    t,
    [...local, '--ipsec-key-file', '/k', '--node', 'n', '--ipsec-address', '1.1.1.1', '--ipsec-pod-cidr', '10.0.0.0/8'],
    { KMESH_NODE_INFO_SOURCE: 'etcd' },
    /^KMESH_NODE_INFO_SOURCE must be dir or kubernetes, got etcd$/,
  )
})

t.test('the mode: a mode flag wins over both variables; the other mode ignores its variables', async (t) => {
  const kmeshEnv = { XDS_ADDRESS: 'istiod.istio-system.svc:15012', XDS_ROOT_CA: '/ca.pem' }
  const l = opts(local, { ...kmeshEnv, KMESH_XDS_TOKEN_FILE: '/t', KMESH_XDS_INSECURE: 'true' })
  t.match(l, { meshFile: 'm.yaml', xds: undefined }, '--mesh-file beside XDS_ADDRESS: local mode')
  const c = opts(['--cgroup', '/c'], { ...kmeshEnv, KMESH_MESH_FILE_MAX_BYTES: '10' })
  t.match(c, { meshFile: undefined, xds: { address: kmeshEnv.XDS_ADDRESS, caFile: '/ca.pem' } }, 'XDS_ADDRESS alone')
  t.equal(c.meshFileMaxBytes, undefined, 'a local-mode variable is ignored in cluster mode')
  t.match(opts(['--xds-address', 'x:1', '--cgroup', '/c'], { LOCAL_XDS_PATH: '/m.yaml' }), {
    meshFile: undefined,
    xds: { address: 'x:1' },
  })
  t.match(opts(['--cgroup', '/c'], { LOCAL_XDS_PATH: '/m.yaml' }), { meshFile: '/m.yaml', xds: undefined })
  refuses(
    t,
    ['--cgroup', '/c'],
    { LOCAL_XDS_PATH: '/m.yaml', XDS_ADDRESS: 'x:1' },
    /^LOCAL_XDS_PATH and XDS_ADDRESS are both set: give exactly one/,
  )
  refuses(t, ['--cgroup', '/c'], {}, /^give exactly one of --mesh-file \(local mode\) and --xds-address/)
  refuses(t, [...local, '--xds-token-file', '/t'], {}, /^--xds-token-file needs --xds-address/)
  t.match(opts(['--mesh-file', 'm'], { KMESH_CGROUP: '/sys/fs/cgroup/k' }), { cgroup: '/sys/fs/cgroup/k' })
})

t.test("explain reads the daemon's pin root and state dir from the same variables", async (t) => {
  const env = { KMESH_PIN_ROOT: '/sys/fs/bpf/netcfg', KMESH_STATE_DIR: '/var/lib/netcfg' }
  t.match(parseExplainArgs(['127.10.0.1:80'], env), { pinRoot: env.KMESH_PIN_ROOT, stateDir: env.KMESH_STATE_DIR })
  t.match(parseExplainArgs(['--pin-root', '/p', '127.10.0.1:80'], env), { pinRoot: '/p' }, 'the flag wins')
  t.match(parseExplainArgs(['127.10.0.1:80'], { KMESH_PIN_ROOT: '' }), { pinRoot: '/sys/fs/bpf/kmesh-ts' })
  t.match(EXPLAIN_HELP, 'env KMESH_PIN_ROOT')
})

t.test('--help prints each flag with its variable under it', async (t) => {
  const lines = HELP.split('\n')
  for (const f of FLAGS) {
    const at = lines.findIndex((l) => l.startsWith(`  ${flagUsage(f)}`))
    t.ok(at >= 0, `--help lists ${flagUsage(f)}`)
    if (!f.env) continue
    const next = lines.findIndex((l, i) => i > at && /^ {2}-/.test(l))
    const own = lines.slice(at, next < 0 ? undefined : next)
    t.ok(
      own.some((l) => l.trim().startsWith(`env ${f.env}`)),
      `--${f.name}: "env ${f.env}" among its lines`,
    )
  }
})

t.test("the README's table is the flag table", async (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const m = /<!-- flags:begin -->\n([\s\S]*?)\n<!-- flags:end -->/.exec(readme)
  t.ok(m, 'README.md has the flags:begin / flags:end markers')
  const rows = (m?.[1] ?? '')
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => {
      const cells = l
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim())
      const flag = /^`([^`]+)`$/.exec(cells[0] ?? '')?.[1]?.replaceAll('\\|', '|')
      const env = /^`([^`]+)`/.exec(cells[1] ?? '')?.[1]
      const scope = /\((local|cluster) mode only\)/.exec(cells[1] ?? '')?.[1]
      return { flag, env, scope, meaning: cells[2] ?? '' }
    })
  const expected = FLAGS.filter((f) => f.env).map((f) => ({ flag: flagUsage(f), env: f.env, scope: f.mode }))
  const got = rows.map(({ flag, env, scope }) => ({ flag, env, scope }))
  const same = t.same(got, expected, 'flag, variable and mode of every row, in the order of src/cli-flags.ts')
  if (!same) t.comment(`paste this between the markers in apps/kmesh-daemon/README.md:\n${flagsTableMarkdown()}`)
  for (const r of rows) t.ok(r.meaning.length > 0, `${r.flag} has a meaning`)
})

t.test(
  'through the real command: a bad variable exits 2 naming it; the start-up log names the variables used',
  async (t) => {
    const d = spawnDaemon(local, undefined, { KMESH_LOG_LEVEL: 'verbose' })
    t.equal(await d.exited(), 2)
    t.equal(
      d.output().trim(),
      'kmesh-daemon: KMESH_LOG_LEVEL must be one of trace, debug, info, warn, error, got verbose',
    )
    // A start that fails early (the cgroup does not exist: nothing is loaded or attached) after reading its
    // settings from the environment. The pin root and state dir are locked (created) first: private temp dirs.
    const dir = mkdtempSync(join(tmpdir(), 'netcfg-cli-env-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const e = spawnDaemon(['--mesh-file', join(dir, 'mesh.yaml')], undefined, {
      KMESH_CGROUP: join(dir, 'no-such-cgroup'),
      KMESH_LOG_FORMAT: 'json',
      KMESH_PIN_ROOT: join(dir, 'pins'),
      KMESH_STATE_DIR: join(dir, 'state'),
    })
    t.equal(await e.exited(), 1)
    const lines = e
      .output()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; fromEnvironment?: Record<string, string> })
    const env = {
      '--cgroup': 'KMESH_CGROUP',
      '--log-format': 'KMESH_LOG_FORMAT',
      '--pin-root': 'KMESH_PIN_ROOT',
      '--state-dir': 'KMESH_STATE_DIR',
    }
    t.match(
      lines.find((l) => l.msg === 'starting'),
      { fromEnvironment: env },
    )
    t.match(
      lines.find((l) => l.msg === 'start failed'),
      { fromEnvironment: env },
    )
  },
)
