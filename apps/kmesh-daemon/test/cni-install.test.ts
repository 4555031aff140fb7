/**
 * The CNI installer on real files in a temporary CNI bin and conf dir (never the machine's /etc/cni): our entry is
 * appended once to the primary network list, uninstall gives the list back, a single-plugin .conf becomes a list,
 * broken files are named, and a reader running in another process while other processes install and uninstall
 * hundreds of times never reads a file that is not valid JSON.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { CniConfigError, installCni, primaryConfigFile, uninstallCni } from '../src/cni/index.js'
import { pluginBinary } from './support/cni-runtime.js'

const INSTALL_MODULE = fileURLToPath(new URL('../src/cni/install.ts', import.meta.url))

/** containerd's example bridge network, as a node would have it. */
const BRIDGE_LIST = {
  cniVersion: '1.0.0',
  name: 'containerd-net',
  plugins: [
    {
      type: 'bridge',
      bridge: 'cni0',
      isGateway: true,
      ipMasq: true,
      promiscMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.88.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }] },
    },
    { type: 'portmap', capabilities: { portMappings: true } },
  ],
}

function dirs(t: { teardown(fn: () => void): void }): { binDir: string; confDir: string; plugin: string } {
  const root = mkdtempSync(join(tmpdir(), 'kmesh-test-cni-install-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const binDir = join(root, 'bin')
  const confDir = join(root, 'net.d')
  mkdirSync(binDir)
  mkdirSync(confDir)
  return { binDir, confDir, plugin: pluginBinary() }
}

const readJson = (file: string): { plugins: Record<string, unknown>[] } & Record<string, unknown> =>
  JSON.parse(readFileSync(file, 'utf8'))

t.test('install appends one entry to the primary list, twice is once, uninstall gives the list back', async (t) => {
  const { binDir, confDir, plugin } = dirs(t)
  const primary = join(confDir, '10-containerd-net.conflist')
  writeFileSync(primary, JSON.stringify(BRIDGE_LIST, null, 2), { mode: 0o640 })
  writeFileSync(join(confDir, '20-other.conflist'), JSON.stringify({ ...BRIDGE_LIST, name: 'other' }))
  writeFileSync(join(confDir, '05-notes.txt'), 'not a CNI file')

  const first = installCni({ binDir, confDir, pluginBinary: plugin })
  t.same(first, { binary: join(binDir, 'kmesh-cni'), confFile: primary, changed: true })
  const after = readJson(primary)
  t.same(after.plugins.slice(0, 2), BRIDGE_LIST.plugins, 'the existing plugins are kept, in order')
  t.same(after.plugins[2], { type: 'kmesh-cni', kmeshSocket: '/var/run/kmesh-ts/cni.sock' }, 'ours is last')
  t.equal(after.name, 'containerd-net')
  t.equal(statSync(primary).mode & 0o777, 0o640, 'the file keeps its mode')
  t.ok(readFileSync(join(binDir, 'kmesh-cni')).equals(readFileSync(plugin)), 'the binary is installed')
  t.equal(statSync(join(binDir, 'kmesh-cni')).mode & 0o777, 0o755, 'executable')
  t.same(readJson(join(confDir, '20-other.conflist')).plugins.length, 2, 'a file that is not primary is untouched')

  const bytes = readFileSync(primary)
  const ino = statSync(primary).ino
  const second = installCni({ binDir, confDir, pluginBinary: plugin })
  t.equal(second.changed, false, 'a second install changes nothing')
  t.ok(readFileSync(primary).equals(bytes), 'same bytes')
  t.equal(statSync(primary).ino, ino, 'not even rewritten')

  const moved = installCni({ binDir, confDir, pluginBinary: plugin, socketPath: '/run/k/other.sock' })
  t.equal(moved.changed, true)
  t.same(
    readJson(primary).plugins.filter((p) => p.type === 'kmesh-cni'),
    [{ type: 'kmesh-cni', kmeshSocket: '/run/k/other.sock' }],
    'a new socket path replaces the entry: still one',
  )
  t.same(
    readdirSync(confDir).filter((n) => n.endsWith('.tmp')),
    [],
    'no temporary file is left',
  )

  const removed = uninstallCni({ binDir, confDir })
  t.same(removed, { patched: [primary], binaryRemoved: true })
  t.same(readJson(primary), BRIDGE_LIST, 'uninstall gives the original list back')
  t.same(readdirSync(binDir), [], 'and removes the binary')
  t.same(uninstallCni({ binDir, confDir }), { patched: [], binaryRemoved: false }, 'a second uninstall is a no-op')
})

t.test('the primary file is the first .conf/.conflist/.json in byte order, as the runtime picks', async (t) => {
  const { confDir } = dirs(t)
  for (const name of ['20-b.conflist', '10-a.json', 'Z.conf', '99-c.conf', '.00-hidden.conflist.tmp', '00-x.yaml'])
    writeFileSync(join(confDir, name), '{}')
  t.equal(primaryConfigFile(confDir), join(confDir, '10-a.json'))
  const { confDir: empty } = dirs(t)
  t.throws(() => primaryConfigFile(empty), {
    name: 'CniConfigError',
    message: new RegExp(`^${empty}: no network configuration`),
  })
})

t.test('a single-plugin .conf becomes a .conflist (name and cniVersion kept); the .conf is removed', async (t) => {
  const { binDir, confDir, plugin } = dirs(t)
  const conf = { cniVersion: '0.4.0', name: 'flat', type: 'bridge', bridge: 'br0', ipam: { type: 'host-local' } }
  writeFileSync(join(confDir, '10-flat.conf'), JSON.stringify(conf))
  const r = installCni({ binDir, confDir, pluginBinary: plugin, socketPath: '/s.sock' })
  t.same(r, {
    binary: join(binDir, 'kmesh-cni'),
    confFile: join(confDir, '10-flat.conflist'),
    changed: true,
    convertedFrom: join(confDir, '10-flat.conf'),
  })
  t.same(readdirSync(confDir), ['10-flat.conflist'])
  t.same(readJson(r.confFile), {
    cniVersion: '0.4.0',
    name: 'flat',
    plugins: [
      { name: 'flat', type: 'bridge', bridge: 'br0', ipam: { type: 'host-local' } },
      { type: 'kmesh-cni', kmeshSocket: '/s.sock' },
    ],
  })
  t.equal(installCni({ binDir, confDir, pluginBinary: plugin, socketPath: '/s.sock' }).changed, false)
  uninstallCni({ binDir, confDir })
  t.same(readJson(r.confFile).plugins, [{ name: 'flat', type: 'bridge', bridge: 'br0', ipam: { type: 'host-local' } }])

  writeFileSync(join(confDir, '05-x.conf'), JSON.stringify({ ...conf, name: 'x' }))
  writeFileSync(join(confDir, '05-x.conflist'), JSON.stringify(BRIDGE_LIST))
  t.throws(() => installCni({ binDir, confDir, pluginBinary: plugin }), {
    message: `${join(confDir, '05-x.conf')}: converting it would overwrite ${join(confDir, '05-x.conflist')}, which exists`,
  })
})

t.test('broken or unknown files give errors that name the file; nothing is written', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['{"cniVersion": "1.0.0", "plugins": [', '10-a.conflist', /10-a\.conflist: not valid JSON/],
    ['[1, 2]', '10-a.conflist', /10-a\.conflist: not a JSON object/],
    ['{"name": "n", "plugins": {}}', '10-a.conflist', /10-a\.conflist: "plugins" is not an array/],
    ['{"name": "n", "plugins": [{"type": "bridge"}, {"x": 1}]}', '10-a.conflist', /plugins\[1\] is not an object/],
    ['{"name": "n"}', '10-a.json', /10-a\.json: neither a network configuration list/],
    ['{"type": "bridge"}', '10-a.conf', /10-a\.conf: a single-plugin configuration needs "cniVersion" and "name"/],
  ]
  for (const [text, name, error] of cases) {
    const { binDir, confDir, plugin } = dirs(t)
    writeFileSync(join(confDir, name), text)
    writeFileSync(join(confDir, '20-good.conflist'), JSON.stringify(BRIDGE_LIST))
    t.throws(() => installCni({ binDir, confDir, pluginBinary: plugin }), { name: 'CniConfigError', message: error })
    t.equal(readFileSync(join(confDir, name), 'utf8'), text, `${name} is left as it was`)
    t.same(readJson(join(confDir, '20-good.conflist')), BRIDGE_LIST, 'the next file is not patched instead')
  }
  const { binDir, confDir } = dirs(t)
  writeFileSync(join(confDir, '10-a.conflist'), JSON.stringify(BRIDGE_LIST))
  t.throws(() => installCni({ binDir, confDir, pluginBinary: '/nowhere/kmesh-cni' }), {
    message: /the plugin binary \/nowhere\/kmesh-cni is missing \(ENOENT\): build it with/,
  })
  t.throws(() => installCni({ binDir, confDir: '/nowhere/net.d', pluginBinary: pluginBinary() }), CniConfigError)
  t.throws(() => installCni({ binDir, confDir, pluginBinary: pluginBinary(), confFile: '99-missing.conflist' }), {
    message: new RegExp(`${join(confDir, '99-missing.conflist')}: cannot read`),
  })
})

/** Reads the file in a loop until stdin closes; prints how many reads parsed, failed, and held our entry. */
const READER = `
import { readFileSync } from 'node:fs'
const file = process.argv[1]
let reads = 0, invalid = 0, withEntry = 0, without = 0, stop = false
const bad = []
process.stdin.on('end', () => (stop = true)).resume()
console.log('ready')
const loop = () => {
  for (let i = 0; i < 200; i++) {
    const text = readFileSync(file, 'utf8')
    reads++
    try {
      const c = JSON.parse(text)
      if (c.plugins.some((p) => p.type === 'kmesh-cni')) withEntry++
      else without++
    } catch (e) {
      invalid++
      if (bad.length < 3) bad.push(text.slice(0, 80))
    }
  }
  if (stop) console.log(JSON.stringify({ reads, invalid, withEntry, without, bad }))
  else setImmediate(loop)
}
loop()
`

/** Installs and uninstalls `rounds` times. */
const WRITER = `
const { installCni, uninstallCni } = await import(process.argv[1])
const [, , binDir, confDir, plugin, rounds] = process.argv
for (let i = 0; i < Number(rounds); i++) {
  installCni({ binDir, confDir, pluginBinary: plugin })
  uninstallCni({ binDir, confDir })
}
console.log('done')
`

function node(args: string[], input?: boolean): ReturnType<typeof spawn> {
  return spawn(process.execPath, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'inherit'] })
}

function output(child: ReturnType<typeof spawn>): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d) => (out += d))
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${out}`))))
  })
}

t.test('a reader never sees an invalid file while two processes install and uninstall 100 times each', async (t) => {
  const { binDir, confDir, plugin } = dirs(t)
  const primary = join(confDir, '10-containerd-net.conflist')
  writeFileSync(primary, JSON.stringify(BRIDGE_LIST, null, 2))
  const reader = node(['--input-type=module', '-e', READER, primary], true)
  t.teardown(() => reader.kill())
  const readerOut = output(reader)
  await new Promise((resolve) => reader.stdout!.once('data', resolve))

  const rounds = 100
  const started = performance.now()
  const writers = [1, 2].map(() =>
    output(
      node([
        '--import=tsx',
        '--input-type=module',
        '-e',
        WRITER,
        INSTALL_MODULE,
        binDir,
        confDir,
        plugin,
        String(rounds),
      ]),
    ),
  )
  t.same(await Promise.all(writers), ['done\n', 'done\n'])
  const writeMs = performance.now() - started
  reader.stdin!.end()
  const seen = JSON.parse((await readerOut).trim().split('\n').pop()!) as Record<string, number>
  t.comment(
    `${seen.reads} reads during ${4 * rounds} atomic writes in ${Math.round(writeMs)} ms: ${JSON.stringify(seen)}`,
  )
  t.equal(seen.invalid, 0, 'no read saw invalid JSON')
  t.ok(seen.withEntry! > 0 && seen.without! > 0, 'the reader saw both states: it ran while the writers did')

  installCni({ binDir, confDir, pluginBinary: plugin })
  t.equal(readJson(primary).plugins.filter((p) => p.type === 'kmesh-cni').length, 1, 'one entry after all that')
  t.same(readdirSync(confDir), ['10-containerd-net.conflist'], 'no temporary file is left')
})
