/** The daemon's flags for cluster-mode node info: defaults per mode, and combinations refused with the flag named. */
import t from 'tap'
import { HELP, parseCli, UsageError, type DaemonOptions } from '../src/cli.js'

const local = ['--mesh-file', 'mesh.yaml', '--cgroup', '/sys/fs/cgroup/unified/x', '--node', 'node-a']
const cluster = ['--xds-address', 'istiod:15012', '--cgroup', '/sys/fs/cgroup/unified/x', '--node', 'node-a']
const ipsec = ['--ipsec-key-file', '/k.json', '--ipsec-address', '192.168.0.1', '--ipsec-pod-cidr', '10.244.1.0/24']
const parse = (...args: string[]) => (parseCli(args) as DaemonOptions).ipsec

t.test('defaults', async (t) => {
  t.same(
    parse(...local, ...ipsec, '--node-info-dir', '/run/ni')?.nodeInfo,
    { source: 'dir', dir: '/run/ni' },
    'local mode with --node-info-dir: the directory',
  )
  t.same(
    parse(...cluster, ...ipsec)?.nodeInfo,
    { source: 'kubernetes', kubeconfig: undefined, namespace: 'kmesh-system', deleteOnExit: false },
    'cluster mode: the CRD, in-cluster config, kmesh-system, object kept',
  )
  t.same(
    parse(...cluster, ...ipsec, '--node-info-dir', '/run/ni')?.nodeInfo,
    { source: 'dir', dir: '/run/ni' },
    'cluster mode with --node-info-dir: the directory',
  )
  t.same(
    parse(
      ...local,
      ...ipsec,
      '--node-info-source',
      'kubernetes',
      '--kubeconfig',
      '/kc',
      '--node-info-namespace',
      'mesh',
      '--node-info-delete-on-exit',
    )?.nodeInfo,
    { source: 'kubernetes', kubeconfig: '/kc', namespace: 'mesh', deleteOnExit: true },
    'local mode can use the CRD explicitly',
  )
  t.equal(parse(...cluster, ...ipsec)?.rejectPlaintext, true, 'plaintext-rejecting policies on by default')
  t.equal(
    parse(...cluster, ...ipsec, '--ipsec-allow-plaintext')?.rejectPlaintext,
    false,
    '--ipsec-allow-plaintext: Kmesh parity',
  )
})

t.test('refused combinations name the flag', async (t) => {
  const refuses = (args: string[], re: RegExp) => {
    let err: unknown
    try {
      parseCli(args)
    } catch (e) {
      err = e
    }
    t.ok(err instanceof UsageError, `${args.slice(6).join(' ')}: a UsageError`)
    t.match((err as Error | undefined)?.message, re)
  }
  refuses(
    [...local, ...ipsec],
    /--ipsec-key-file needs --node-info-dir DIR \(local mode\) or --node-info-source kubernetes/,
  )
  refuses([...local, ...ipsec, '--node-info-source', 'etcd'], /--node-info-source must be dir or kubernetes, got etcd/)
  refuses([...local, ...ipsec, '--node-info-source', 'dir'], /--node-info-source dir needs --node-info-dir/)
  refuses(
    [...cluster, ...ipsec, '--node-info-source', 'kubernetes', '--node-info-dir', '/d'],
    /--node-info-dir and --node-info-source kubernetes exclude each other/,
  )
  refuses(
    [...cluster, ...ipsec, '--node-info-dir', '/d', '--kubeconfig', '/kc'],
    /--kubeconfig needs --node-info-source kubernetes/,
  )
  refuses(
    [...cluster, ...ipsec, '--node-info-dir', '/d', '--node-info-delete-on-exit'],
    /--node-info-delete-on-exit needs --node-info-source kubernetes/,
  )
  refuses(
    [...cluster, ...ipsec, '--node-info-namespace', 'Kmesh_System'],
    /--node-info-namespace Kmesh_System: must be a DNS-1123 label/,
  )
  refuses([...cluster, '--kubeconfig', '/kc'], /--kubeconfig needs --ipsec-key-file/)
  refuses([...cluster, '--ipsec-allow-plaintext'], /--ipsec-allow-plaintext needs --ipsec-key-file/)
  refuses(
    ['--xds-address', 'istiod:15012', '--cgroup', '/x', ...ipsec],
    /--node NAME \(or NODE_NAME in the environment\): it names this node's KmeshNodeInfo object/,
  )
})

t.test('--help lists the flags', async (t) => {
  for (const flag of [
    '--node-info-source dir|kubernetes',
    '--kubeconfig FILE',
    '--node-info-namespace NS',
    '--node-info-delete-on-exit',
    '--ipsec-allow-plaintext',
  ])
    t.match(HELP, flag)
})
