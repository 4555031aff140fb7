/**
 * Structured logs (pino): JSON lines for machines, or one readable line per event for people
 * (`2026-01-02T03:04:05.678Z INFO msg key=value …`), chosen with --log-format. Both carry an RFC 3339 timestamp
 * (UTC, milliseconds) and the level as a word, so a line reads the same in `kubectl logs` and in a log store.
 *
 * Levels change at runtime (the admin endpoint's `POST /logging?level=` and `/debug/loggers`): every child logger
 * made from a logger of createLogger() is tracked, by its `component` binding, so a new level reaches the loggers
 * the parts of the daemon already hold (pino copies the level into a child when it is made).
 */
import { pino, type Logger } from 'pino'

export type { Logger }
export type LogFormat = 'text' | 'json'

/** The levels an operator may set (pino's, without fatal; `silent` turns a logger off). */
export const SETTABLE_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const
export type SettableLevel = (typeof SETTABLE_LEVELS)[number]

/** The name of the root logger in /debug/loggers (children are named by their `component` binding). */
export const DEFAULT_LOGGER = 'default'

interface LevelControl {
  /** component -> its loggers (weakly: a child dropped by its owner is not kept alive) */
  children: Map<string, Set<WeakRef<Logger>>>
  /** components whose level was set by name: a later default change leaves them alone */
  pinned: Map<string, string>
}

const controls = new WeakMap<Logger, LevelControl>()

export function createLogger(
  options: { format?: LogFormat; level?: string; out?: NodeJS.WritableStream } = {},
): Logger {
  const out = options.out ?? process.stderr
  const control: LevelControl = { children: new Map(), pinned: new Map() }
  const settings = {
    level: options.level ?? 'info',
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    onChild: (child: Logger) => track(control, child),
  }
  const log =
    options.format === 'json'
      ? pino(settings, out as never)
      : pino(settings, { write: (line: string) => out.write(formatText(line)) } as never)
  controls.set(log, control)
  return log
}

function track(control: LevelControl, child: Logger): void {
  const name = componentOf(child)
  let set = control.children.get(name)
  if (!set) control.children.set(name, (set = new Set()))
  set.add(new WeakRef(child))
  const pinned = control.pinned.get(name)
  if (pinned) child.level = pinned
}

function componentOf(log: Logger): string {
  const c = (log.bindings() as { component?: unknown }).component
  return typeof c === 'string' && c !== '' ? c : DEFAULT_LOGGER
}

function liveLoggers(control: LevelControl, name: string): Logger[] {
  const set = control.children.get(name)
  if (!set) return []
  const out: Logger[] = []
  for (const ref of set) {
    const l = ref.deref()
    if (l) out.push(l)
    else set.delete(ref)
  }
  return out
}

export function isSettableLevel(level: string): level is SettableLevel {
  return (SETTABLE_LEVELS as readonly string[]).includes(level)
}

/**
 * Sets the level of the named logger (a component, e.g. `authz`), or of the root and every component not set by
 * name (`name` omitted or `default`). Throws naming the level or logger when either is unknown.
 */
export function setLogLevel(log: Logger, level: string, name: string = DEFAULT_LOGGER): void {
  if (!isSettableLevel(level)) throw new Error(`log level ${level}: expected one of ${SETTABLE_LEVELS.join(', ')}`)
  const control = controls.get(log)
  if (name === DEFAULT_LOGGER) {
    log.level = level
    if (!control) return
    for (const [component] of control.children)
      if (!control.pinned.has(component)) for (const l of liveLoggers(control, component)) l.level = level
    return
  }
  if (!control || !control.children.has(name))
    throw new Error(`logger ${name}: not found; loggers: ${loggerNames(log).join(', ')}`)
  control.pinned.set(name, level)
  for (const l of liveLoggers(control, name)) l.level = level
}

export function loggerNames(log: Logger): string[] {
  const control = controls.get(log)
  const names = new Set([DEFAULT_LOGGER, ...(control ? [...control.children.keys()] : [])])
  return [...names].sort()
}

/** Every logger's level now: `{ default: 'info', authz: 'debug', … }`. */
export function logLevels(log: Logger): Record<string, string> {
  const control = controls.get(log)
  const out: Record<string, string> = { [DEFAULT_LOGGER]: log.level }
  if (!control) return out
  for (const name of control.children.keys()) {
    if (name === DEFAULT_LOGGER) continue
    out[name] = control.pinned.get(name) ?? liveLoggers(control, name)[0]?.level ?? log.level
  }
  return out
}

function formatText(line: string): string {
  const { level, time, msg, ...fields } = JSON.parse(line) as { level: string; time?: string; msg?: string } & Record<
    string,
    unknown
  >
  const extra = Object.entries(fields).map(
    ([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`,
  )
  return `${time ? `${time} ` : ''}${String(level).toUpperCase()} ${msg ?? ''}${extra.length ? ` ${extra.join(' ')}` : ''}\n`
}
