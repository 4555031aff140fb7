/**
 * The container image (issue 15): scripts/image.sh builds it (debootstrap + buildah, no Docker engine) into an OCI
 * archive; the archive is loaded into podman and run as a DaemonSet would run it — host network, bpffs and the
 * cgroup v2 mount bind-mounted, every capability dropped but the ones the daemon uses in local mode (BPF, PERFMON,
 * NET_ADMIN), podman's seccomp profile with bpf() allowed to CAP_BPF — on a mesh file and a child cgroup made for the test. A connect from that cgroup to the VIP must
 * reach a backend. Also checked: the OCI annotations, node, iproute2 and the kmesh-cni plugin inside the image.
 *
 * podman runs with runc (crun rejects this host's hybrid cgroup layout) and the explicit rlimits these machines need;
 * never on podman's default bridge network (it rewrites the host's iptables).
 */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { cgroup2Mount, privilegedSkip, uniqueName } from '@kmesh-ts/testkit'
import { meshHarness, meshYaml } from './support/mesh-harness.js'

const run = promisify(execFile)
const repo = fileURLToPath(new URL('../../../', import.meta.url))
const version = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version as string
const hasTools = (): string | undefined => {
  const missing = ['podman', 'buildah', 'debootstrap', 'runc'].filter(
    (tool) => !['/usr/bin', '/usr/sbin'].some((dir) => existsSync(`${dir}/${tool}`)),
  )
  if (missing.length > 0)
    return `${missing.join(', ')} not installed (scripts/setup.sh installs podman, buildah, debootstrap and runc)`
  return undefined
}
const skip = privilegedSkip(
  'cgroup connect4 programs and bpffs pins from inside a container (CAP_BPF, CAP_PERFMON: kernel >= 5.8), podman with runc, buildah and debootstrap',
  hasTools,
)

const VIP = '127.36.0.1'
const BACKEND = '127.0.36.1'
const PORT = 18136
/** What podman needs on these machines (see docs/toolchain.md): runc, explicit rlimits, never the default bridge. */
const PODMAN_RUN = ['run', '--runtime', 'runc', '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768']
/** Local mode needs exactly these; node mode adds SYS_ADMIN, SYS_PTRACE (pods' namespaces) — see deploy/chart. */
const CAPS = ['BPF', 'PERFMON', 'NET_ADMIN']

/**
 * podman's default seccomp profile lets bpf() through only with CAP_SYS_ADMIN (an allow rule that includes it, an
 * EPERM rule that excludes it). The daemon needs neither that capability nor an unconfined container: this is the
 * same profile with bpf() also allowed to CAP_BPF (what kernels >= 5.8 check), written next to the mesh file.
 */
function bpfSeccompProfile(dir: string): string {
  type Rule = { names: string[]; action: string; includes?: { caps?: string[] }; excludes?: { caps?: string[] } }
  const profile = JSON.parse(readFileSync('/usr/share/containers/seccomp.json', 'utf8')) as { syscalls: Rule[] }
  for (const rule of profile.syscalls)
    if (rule.names.includes('bpf') && rule.excludes?.caps?.includes('CAP_SYS_ADMIN')) rule.excludes.caps.push('CAP_BPF')
  profile.syscalls.push({ names: ['bpf'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_BPF'] } })
  const file = join(dir, 'seccomp-bpf.json')
  writeFileSync(file, JSON.stringify(profile))
  return file
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })

async function waitReady(url: string, container: string, ms: number): Promise<void> {
  const until = Date.now() + ms
  for (;;) {
    try {
      if ((await fetch(url)).status === 200) return
    } catch {
      /* not listening yet */
    }
    if (Date.now() > until) {
      const logs = await run('podman', ['logs', container]).catch((e: Error) => ({ stdout: '', stderr: e.message }))
      throw new Error(`${url} not ready after ${ms} ms; container log:\n${logs.stdout}${logs.stderr}`)
    }
    await new Promise((r) => setTimeout(r, 250))
  }
}

t.setTimeout(600_000)

t.test('the image builds, loads from its OCI archive and serves a VIP from a child cgroup', { skip }, async (t) => {
  const tag = `localhost/${uniqueName('image')}:test`
  t.teardown(() => run('podman', ['rmi', '-f', tag]).catch(() => undefined))
  const built = await run('bash', ['scripts/image.sh', '--tag', tag], { cwd: repo, maxBuffer: 1 << 24 })
  const report = built.stdout.slice(built.stdout.indexOf('image '))
  t.comment(report.trim())
  const archive = /archive (\S+)/.exec(report)?.[1] as string
  const compressedMb = Number(/compressed ([\d.]+) MB/.exec(report)?.[1])
  t.ok(archive?.endsWith(`kmesh-daemon-${version}.oci.tar`), 'an OCI archive named by the version')
  t.ok(compressedMb > 0 && compressedMb <= 150, `${compressedMb} MB compressed (target <= 150 MB)`)
  t.match(report, /unpacked [\d.]+ MB\n {2}build time [\d.]+ s/, 'unpacked size and build time reported')

  // The archive, not the build's local copy, is what runs.
  await run('podman', ['rmi', '-f', tag])
  const loaded = await run('podman', ['load', '-i', `${repo}/${archive}`])
  t.match(loaded.stdout + loaded.stderr, tag.replace(/^localhost\//, ''), 'podman loads the OCI archive')
  const labels = JSON.parse(
    (await run('podman', ['image', 'inspect', tag, '--format', '{{json .Labels}}'])).stdout,
  ) as Record<string, string>
  t.equal(labels['org.opencontainers.image.version'], version, 'version annotation')
  t.match(labels['org.opencontainers.image.source'], /^https:\/\//, 'source annotation')
  t.match(labels['org.opencontainers.image.licenses'], /Apache-2\.0/, 'licence annotation')
  t.match(labels['org.opencontainers.image.revision'], /^[0-9a-f]{40}$|^unknown$/, 'revision annotation')

  const inImage = async (entrypoint: string, args: string[], env: string[] = []) =>
    (
      await run('podman', [
        ...PODMAN_RUN,
        '--rm',
        '--network',
        'none',
        ...env.flatMap((e) => ['--env', e]),
        '--entrypoint',
        entrypoint,
        tag,
        ...args,
      ])
    ).stdout
  t.match(await inImage('/usr/local/bin/node', ['--version']), /^v20\./, 'node 20 in the image')
  t.match(await inImage('/usr/local/bin/node', ['/opt/kmesh-ts/bin/kmesh-daemon.js', '--version']), version)
  t.match(await inImage('ip', ['-V']), /iproute2/, 'iproute2 (ip) in the image')
  t.match(await inImage('tc', ['-V']), /iproute2/, 'iproute2 (tc) in the image')
  const cni = JSON.parse(await inImage('/opt/kmesh-ts/bin/kmesh-cni', [], ['CNI_COMMAND=VERSION']))
  t.ok(Array.isArray(cni.supportedVersions), 'the kmesh-cni plugin answers VERSION from the image')

  // The daemon in the container, on a child cgroup and a mesh file made here.
  const h = await meshHarness(t)
  await h.backend('web-0', BACKEND, PORT)
  h.writeMesh(
    meshYaml(
      [{ name: 'web-0', ip: BACKEND, services: { web: { 80: PORT } } }],
      [{ name: 'web', vips: [VIP], ports: { 80: PORT } }],
    ),
  )
  const adminPort = await freePort()
  const name = uniqueName('image-run')
  const cgroupRoot = cgroup2Mount() as string
  const work = dirname(h.meshFile)
  const stop = () => run('podman', ['rm', '-f', '-t', '5', name]).catch(() => undefined)
  t.teardown(stop)
  await run('podman', [
    ...PODMAN_RUN,
    '--detach',
    '--name',
    name,
    '--network',
    'host',
    '--cgroupns',
    'host',
    '--cap-drop',
    'all',
    '--security-opt',
    `seccomp=${bpfSeccompProfile(work)}`,
    ...CAPS.flatMap((c) => ['--cap-add', c]),
    '--volume',
    '/sys/fs/bpf:/sys/fs/bpf',
    '--volume',
    `${cgroupRoot}:/host/cgroup2`,
    '--volume',
    `${work}:${work}`,
    tag,
    '--mesh-file',
    h.meshFile,
    '--cgroup',
    `/host/cgroup2/${basename(h.cgroup)}`,
    '--pin-root',
    h.pinRoot,
    '--state-dir',
    h.stateDir,
    '--admin-address',
    `127.0.0.1:${adminPort}`,
    '--metrics-address',
    '',
  ])
  try {
    await waitReady(`http://127.0.0.1:${adminPort}/healthz/ready`, name, 60_000)
    const result = await h.probe([`${VIP}:80`], 20)
    t.same(result, { [`${VIP}:80`]: { 'web-0': 20 } }, 'every connect to the VIP from the cgroup reached the backend')
    const outside = await h.probe([`${VIP}:80`], 3, { outside: true })
    t.notOk(outside[`${VIP}:80`]?.['web-0'], 'a process outside the cgroup is untouched')
  } finally {
    const logs = await run('podman', ['logs', name]).catch(() => ({ stdout: '', stderr: '' }))
    await stop()
    t.match(`${logs.stdout}${logs.stderr}`, /ready|applied/i, 'the container logged its start')
  }
})
