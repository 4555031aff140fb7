// Log lines: RFC 3339 timestamps and level words in both formats; levels changed at runtime reach child loggers.
import t from 'tap'
import { createLogger, logLevels, loggerNames, setLogLevel } from '../src/log.js'

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

function capture() {
  const lines: string[] = []
  const out = { write: (s: string) => lines.push(s) } as unknown as NodeJS.WritableStream
  return { lines, out }
}

t.test('json: time is RFC 3339, level is a word', async (t) => {
  const { lines, out } = capture()
  const log = createLogger({ format: 'json', out })
  log.warn({ file: '/x' }, 'refused')
  const line = JSON.parse(lines[0]!)
  t.match(line.time, RFC3339)
  t.ok(Math.abs(Date.parse(line.time) - Date.now()) < 5000)
  t.equal(line.level, 'warn')
  t.equal(line.msg, 'refused')
  t.equal(line.file, '/x')
})

t.test('text: time first, then the level word', async (t) => {
  const { lines, out } = capture()
  const log = createLogger({ format: 'text', out })
  log.info({ n: 3, why: 'two words' }, 'mesh applied')
  const [time, level, ...rest] = lines[0]!.trimEnd().split(' ')
  t.match(time, RFC3339)
  t.equal(level, 'INFO')
  t.equal(rest.join(' '), 'mesh applied n=3 why="two words"')
})

t.test('runtime levels: the root and its children; a component by name', async (t) => {
  const { lines, out } = capture()
  const log = createLogger({ format: 'json', out })
  const authz = log.child({ component: 'authz' })
  const ipsec = log.child({ component: 'ipsec' })
  const grandchild = authz.child({ pod: 'p' })
  authz.debug('hidden')
  t.equal(lines.length, 0)
  setLogLevel(log, 'debug')
  authz.debug('shown')
  grandchild.debug('shown too')
  ipsec.debug('shown three')
  t.equal(lines.length, 3)
  t.same(loggerNames(log), ['authz', 'default', 'ipsec'])
  setLogLevel(log, 'error', 'ipsec')
  ipsec.warn('hidden')
  t.equal(lines.length, 3)
  // A default change leaves a component set by name alone, and a new child of it gets its level.
  setLogLevel(log, 'info')
  t.same(logLevels(log), { default: 'info', authz: 'info', ipsec: 'error' })
  t.equal(log.child({ component: 'ipsec' }).level, 'error')
  t.throws(() => setLogLevel(log, 'loud'), /log level loud: expected one of trace, debug, info, warn, error, silent/)
  t.throws(() => setLogLevel(log, 'info', 'nope'), /logger nope: not found; loggers: authz, default, ipsec/)
})
