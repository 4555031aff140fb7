/**
 * Node mode's kmesh-cni install (src/node/cni-install.ts) on real directories: with no network configuration yet
 * (the node's primary plugin has not written it) it keeps retrying; once the conflist appears, kmesh-cni is chained
 * and its binary installed; a plain stop removes both, an upgrade's stop keeps them.
 */
import t from 'tap'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startCniInstall } from '../src/node/cni-install.js'
import { createLogger } from '../src/log.js'

const quiet = createLogger({ format: 'json', out: { write: () => true } as unknown as NodeJS.WritableStream })
const conflist = {
  cniVersion: '1.0.0',
  name: 'k8s-pod-network',
  plugins: [{ type: 'bridge', bridge: 'cni0', ipam: { type: 'host-local', subnet: '10.244.1.0/24' } }],
}
const until = async (what: string, pred: () => boolean): Promise<void> => {
  const deadline = Date.now() + 5000
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

t.test('waits for the primary configuration, then chains; a plain stop removes, an upgrade keeps', async (t) => {
  const dir = t.testdir({ bin: {}, net: {}, 'plugin-binary': '#!/bin/sh\n' })
  const [binDir, confDir] = [join(dir, 'bin'), join(dir, 'net')]
  const settings = {
    binDir,
    confDir,
    socketPath: '/run/test.sock',
    pluginBinary: join(dir, 'plugin-binary'),
    retryMs: 20,
    log: quiet,
  }

  const first = startCniInstall(settings)
  t.match(
    first.status(),
    { installed: false, waiting: /no network configuration|\.conflist/i },
    'no configuration yet: waiting',
  )
  writeFileSync(join(confDir, '10-bridge.conflist'), JSON.stringify(conflist))
  await until('installed', () => first.status().installed)
  const chained = JSON.parse(readFileSync(join(confDir, '10-bridge.conflist'), 'utf8')) as typeof conflist
  t.same(
    chained.plugins.map((p) => p.type),
    ['bridge', 'kmesh-cni'],
    'kmesh-cni chained after the primary plugin',
  )
  t.ok(existsSync(join(binDir, 'kmesh-cni')), 'the binary is installed')

  first.close({ uninstall: false })
  t.ok(existsSync(join(binDir, 'kmesh-cni')), 'an upgrade stop keeps the binary')
  t.match(readFileSync(join(confDir, '10-bridge.conflist'), 'utf8'), /kmesh-cni/, 'and the chained entry')

  const second = startCniInstall(settings)
  t.equal(second.status().installed, true, 'the next daemon finds it installed')
  second.close({ uninstall: true })
  t.notOk(existsSync(join(binDir, 'kmesh-cni')), 'a plain stop removes the binary')
  t.same(
    (JSON.parse(readFileSync(join(confDir, '10-bridge.conflist'), 'utf8')) as typeof conflist).plugins.map(
      (p) => p.type,
    ),
    ['bridge'],
    'and the entry: the configuration is as the primary plugin wrote it',
  )
  mkdirSync(join(dir, 'unused'), { recursive: true })
})
