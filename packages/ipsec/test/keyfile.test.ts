import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import t from 'tap'
import { KeyFileError } from '../src/errors.js'
import { IpsecKey, parseKeyFile, readKeyFile } from '../src/keyfile.js'

const raw = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff01020304', 'hex')
const good = { spi: 1, aeadKeyName: 'rfc4106(gcm(aes))', aeadKey: raw.toString('base64'), length: 128 }
const text = (o: Record<string, unknown>): string => JSON.stringify(o)

t.test('a Kmesh key file parses', async (t) => {
  const k = parseKeyFile(text(good), '/etc/kmesh/ipsec/key')
  t.equal(k.spi, 1)
  t.equal(k.aeadKeyName, 'rfc4106(gcm(aes))')
  t.equal(k.length, 128)
  t.same(k.aeadKey, raw)
  t.equal(k.aeadKey.length, 36)
})

t.test('errors name the file and the key, and never crash', async (t) => {
  const file = '/secrets/ipsec.json'
  const cases: [string, string | undefined, RegExp][] = [
    [text({ ...good, aeadKey: 'not base64!!' }), 'aeadKey', /is not valid base64/],
    [text({ ...good, aeadKey: 'QUJD' + '=' }), 'aeadKey', /is not valid base64/],
    [text({ ...good, aeadKey: '' }), 'aeadKey', /is not valid base64/],
    [text({ ...good, aeadKey: 42 }), 'aeadKey', /must be a base64 string, got 42/],
    [text({ ...good, aeadKey: Buffer.alloc(65).toString('base64') }), 'aeadKey', /decodes to 65 bytes; at most 64/],
    [text({ ...good, aeadKeyName: 'gcm(aes)' }), 'aeadKeyName', /must begin with "rfc"/],
    [text({ ...good, aeadKeyName: undefined }), 'aeadKeyName', /must be a string, got nothing/],
    [text({ ...good, spi: 0 }), 'spi', /integer from 1 to 4294967295, got 0/],
    [text({ ...good, spi: -3 }), 'spi', /got -3/],
    [text({ ...good, spi: 1.5 }), 'spi', /got 1.5/],
    [text({ ...good, spi: '1' }), 'spi', /got a string/],
    [text({ ...good, spi: 2 ** 32 }), 'spi', /got 4294967296/],
    [text({ ...good, length: 0 }), 'length', /positive multiple of 8/],
    [text({ ...good, length: 100 }), 'length', /got 100/],
    [text({ ...good, length: null }), 'length', /got null/],
    ['[]', undefined, /must hold one JSON object/],
    ['null', undefined, /must hold one JSON object/],
    ['', undefined, /not valid JSON/],
  ]
  for (const [input, key, message] of cases) {
    let err: unknown
    try {
      parseKeyFile(input, file)
    } catch (e) {
      err = e
    }
    t.type(err, KeyFileError, `${key ?? 'document'}: ${input.slice(0, 40)}`)
    const e = err as KeyFileError
    t.equal(e.file, file)
    t.equal(e.key, key)
    t.match(e.message, message)
    t.ok(e.message.startsWith(`${file}: ${key ? `key "${key}": ` : ''}`), e.message)
  }
})

t.test('a JSON error does not quote the file (it may hold key material)', async (t) => {
  const secret = raw.toString('base64')
  const broken = `{"spi": 1, "aeadKeyName": "rfc4106(gcm(aes))", "aeadKey": "${secret}", "length": 128,,}`
  const err = t.throws(() => parseKeyFile(broken, 'k.json')) as unknown as Error
  t.match(err.message, /^k\.json: not valid JSON/)
  t.notMatch(err.message, secret.slice(0, 12))
})

t.test('key material stays out of JSON, inspect and string forms', async (t) => {
  const k = parseKeyFile(text(good))
  const hex = raw.toString('hex')
  const b64 = raw.toString('base64')
  for (const shown of [JSON.stringify(k), inspect(k), String(k), `${k}`, inspect({ nested: { k } }, { depth: 5 })]) {
    t.notMatch(shown, hex)
    t.notMatch(shown, b64)
    t.notMatch(shown, b64.slice(0, 16))
  }
  t.match(JSON.stringify(k), /"aeadKey":"\[redacted\]"/)
  t.match(inspect(k), /spi=1/)
  // The getter hands out a copy: a caller cannot change the stored key.
  k.aeadKey.fill(0)
  t.same(k.aeadKey, raw)
  t.ok(k.equals(new IpsecKey(1, 'rfc4106(gcm(aes))', raw, 128)))
})

t.test('readKeyFile warns about a file readable by group or others, and reports unreadable files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kmesh-test-keyfile-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'key')
  writeFileSync(path, text(good))
  const warnings: string[] = []
  chmodSync(path, 0o600)
  readKeyFile(path, { onWarning: (w) => warnings.push(w) })
  chmodSync(path, 0o400)
  readKeyFile(path, { onWarning: (w) => warnings.push(w) })
  t.same(warnings, [], 'no warning for 0600 or 0400')
  chmodSync(path, 0o644)
  const k = readKeyFile(path, { onWarning: (w) => warnings.push(w) })
  t.equal(k.spi, 1, 'a loose file still loads')
  chmodSync(path, 0o640)
  readKeyFile(path, { onWarning: (w) => warnings.push(w) })
  t.equal(warnings.length, 2)
  t.match(warnings[0]!, `${path}: key file is readable by others (mode 0644)`)
  t.match(warnings[1]!, 'readable by group (mode 0640)')
  for (const w of warnings) t.notMatch(w, raw.toString('base64').slice(0, 12))
  t.throws(() => readKeyFile(join(dir, 'missing')), {
    name: 'KeyFileError',
    message: /missing: cannot read \(ENOENT\)/,
  })
})
