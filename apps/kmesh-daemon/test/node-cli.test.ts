/**
 * Node mode on the command line and in the options: --node-mode and its flags (and their KMESH_* variables),
 * what they need and what they exclude, and resolveOptions' checks for embedders.
 */
import t from 'tap'
import { parseCli, UsageError } from '../src/cli.js'
import { resolveOptions, type DaemonOptions } from '../src/options.js'

const base = ['--xds-address', 'istiod:15012', '--cgroup', '/sys/fs/cgroup', '--allow-root-cgroup']
const parse = (argv: string[], env: Record<string, string> = {}) => parseCli([...base, ...argv], env) as DaemonOptions

t.test('--node-mode with its defaults, and every flag of it', async (t) => {
  t.same(parse(['--node-mode', '--node', 'n1']).nodeMode, {
    kubeconfig: undefined,
    acceptAmbient: undefined,
    resyncMs: undefined,
    procRoot: undefined,
    cniSocket: '/var/run/kmesh-ts/cni.sock',
  })
  t.equal(parse([]).nodeMode, undefined, 'off unless asked')
  t.same(
    parse([
      '--node-mode',
      '--node',
      'n1',
      '--kubeconfig',
      '/k.yaml',
      '--node-accept-ambient',
      '--node-resync',
      '30s',
      '--proc-root',
      '/host/proc',
      '--cni-socket',
      '',
    ]).nodeMode,
    { kubeconfig: '/k.yaml', acceptAmbient: true, resyncMs: 30_000, procRoot: '/host/proc', cniSocket: '' },
  )
  t.same(
    parse([], {
      KMESH_NODE_MODE: 'true',
      NODE_NAME: 'n2',
      KMESH_KUBECONFIG: '/k2.yaml',
      KMESH_NODE_RESYNC: '0',
      KMESH_CNI_SOCKET: '/run/x.sock',
    }).nodeMode,
    { kubeconfig: '/k2.yaml', acceptAmbient: undefined, resyncMs: 0, procRoot: undefined, cniSocket: '/run/x.sock' },
    'from the environment, as a DaemonSet sets it',
  )
})

t.test('what node mode needs and excludes', async (t) => {
  t.throws(
    () => parse(['--node-mode']),
    new UsageError('--node-mode needs --node NAME (or NODE_NAME): its pods are those of this node'),
  )
  t.throws(() => parse([], { KMESH_NODE_MODE: '1' }), /^KMESH_NODE_MODE needs --node NAME/)
  t.throws(
    () => parse(['--node-mode', '--node', 'n', '--netns', '/run/netns/x']),
    /--node-mode and --netns exclude each other/,
  )
  for (const [flag, value] of [
    ['--node-accept-ambient'],
    ['--node-resync', '1s'],
    ['--proc-root', '/p'],
    ['--cni-socket', '/s'],
  ] as const)
    t.throws(() => parse(value === undefined ? [flag] : [flag, value]), new RegExp(`^${flag} needs --node-mode`))
  t.throws(
    () => parse(['--node-mode', '--node', 'n', '--node-resync', 'soon']),
    /--node-resync soon: expected a duration/,
  )
  t.throws(
    () => parse(['--kubeconfig', '/k']),
    /--kubeconfig needs --ipsec-key-file/,
    'kubeconfig alone still means IPsec',
  )
  t.doesNotThrow(() => parse(['--node-mode', '--node', 'n', '--kubeconfig', '/k']), '... and serves node mode')

  const opts = { xds: { address: 'x:1' }, cgroup: '/sys/fs/cgroup', nodeMode: {} }
  t.throws(() => resolveOptions(opts), /"nodeMode" needs "nodeName"/)
  t.throws(
    () => resolveOptions({ ...opts, nodeName: 'n', netnsPath: '/run/netns/x' }),
    /"nodeMode" and "netnsPath" exclude/,
  )
  t.ok(resolveOptions({ ...opts, nodeName: 'n' }).nodeMode)
})
