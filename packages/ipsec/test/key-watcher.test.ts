import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { KeyFileError } from '../src/errors.js'
import { watchKeyFile } from '../src/key-watcher.js'
import type { IpsecKey } from '../src/keyfile.js'

const keyText = (spi: number, fill = spi): string =>
  JSON.stringify({
    spi,
    aeadKeyName: 'rfc4106(gcm(aes))',
    aeadKey: Buffer.alloc(36, fill).toString('base64'),
    length: 128,
  })

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'kmesh-test-keywatch-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Resolves when `predicate` holds, polling; fails the test after 3 s. */
async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (predicate()) return
    await sleep(10)
  }
  throw new Error(`timed out waiting for ${what}`)
}

t.test('rotation: every SPI stays in the history, the newest is current', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'ipsec-key')
  writeFileSync(path, keyText(1), { mode: 0o600 })
  const loads: IpsecKey[] = []
  const errors: KeyFileError[] = []
  const w = watchKeyFile(path, { debounceMs: 20, onLoad: (k) => loads.push(k), onError: (e) => errors.push(e) })
  t.teardown(() => w.close())
  t.equal(w.current.spi, 1)
  t.same(w.history.spis, [1])

  writeFileSync(path, keyText(2))
  await until(() => w.current.spi === 2, 'SPI 2')
  t.same(w.history.spis, [1, 2])
  t.same(w.history.get(1)!.aeadKey, Buffer.alloc(36, 1), 'the old key is kept for peers still on SPI 1')

  // A broken write keeps the keys in force and reports the error.
  writeFileSync(path, '{"spi": 3, "aeadKeyName": "gcm(aes)", "aeadKey": "AAAA", "length": 128}')
  await until(() => errors.length > 0, 'an error')
  t.match(errors[0]!.message, `${path}: key "aeadKeyName"`)
  t.equal(w.current.spi, 2)

  // Replace by rename, as editors and `kubectl cp` do.
  writeFileSync(join(dir, 'tmp'), keyText(3))
  renameSync(join(dir, 'tmp'), path)
  await until(() => w.current.spi === 3, 'SPI 3 after a rename')
  t.same(w.history.spis, [1, 2, 3])
  t.same(
    loads.map((k) => k.spi),
    [1, 2, 3],
    'one load per new key',
  )
})

t.test('a Kubernetes secret volume: the ..data symlink is swapped atomically', async (t) => {
  const dir = tempDir(t)
  // Layout of a secret mount: key -> ..data/key, ..data -> ..<timestamp>/
  mkdirSync(join(dir, '..2024_01'))
  writeFileSync(join(dir, '..2024_01', 'key'), keyText(7))
  symlinkSync('..2024_01', join(dir, '..data'))
  symlinkSync('..data/key', join(dir, 'key'))
  const w = watchKeyFile(join(dir, 'key'), { debounceMs: 20 })
  t.teardown(() => w.close())
  t.equal(w.current.spi, 7)

  mkdirSync(join(dir, '..2024_02'))
  writeFileSync(join(dir, '..2024_02', 'key'), keyText(8))
  symlinkSync('..2024_02', join(dir, '..data_tmp'))
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
  rmSync(join(dir, '..2024_01'), { recursive: true })
  await until(() => w.current.spi === 8, 'SPI 8 after the ..data swap')
  t.same(w.history.spis, [7, 8])
})

t.test('bursts of writes are debounced into one load', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'key')
  writeFileSync(path, keyText(1))
  const loads: number[] = []
  const w = watchKeyFile(path, { debounceMs: 150, onLoad: (k) => loads.push(k.spi) })
  t.teardown(() => w.close())
  for (let spi = 2; spi <= 6; spi++) {
    writeFileSync(path, keyText(spi))
    await sleep(10)
  }
  await until(() => w.current.spi === 6, 'SPI 6')
  await sleep(300)
  t.same(loads, [1, 6], 'the intermediate SPIs were never read')
  // Rewriting the same key is not a new load.
  writeFileSync(path, keyText(6))
  await sleep(300)
  t.same(loads, [1, 6])
})

t.test('the first load must succeed; an AbortSignal closes the watcher', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'key')
  t.throws(() => watchKeyFile(path), { name: 'KeyFileError', message: /cannot read \(ENOENT\)/ })
  writeFileSync(path, keyText(1), { mode: 0o644 })
  const warnings: string[] = []
  const ac = new AbortController()
  const loads: number[] = []
  const w = watchKeyFile(path, {
    debounceMs: 10,
    signal: ac.signal,
    onWarning: (m) => warnings.push(m),
    onLoad: (k) => loads.push(k.spi),
  })
  t.match(warnings, [/readable by others \(mode 0644\)/])
  ac.abort()
  writeFileSync(path, keyText(2))
  await sleep(200)
  t.same(loads, [1], 'no reload after abort')
  w.close() // idempotent
  t.throws(() => watchKeyFile(path, { debounceMs: -1 }), { name: 'RangeError', message: /debounceMs/ })
})
