/**
 * Structured logs (pino): JSON lines for machines, or one readable line per event for people
 * (`msg key=value …`), chosen with --log-format.
 */
import { pino, type Logger } from 'pino'

export type { Logger }
export type LogFormat = 'text' | 'json'

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }

export function createLogger(
  options: { format?: LogFormat; level?: string; out?: NodeJS.WritableStream } = {},
): Logger {
  const out = options.out ?? process.stderr
  const settings = { level: options.level ?? 'info', base: undefined }
  if (options.format === 'json') return pino(settings, out as never)
  return pino({ ...settings, timestamp: false }, { write: (line: string) => out.write(formatText(line)) } as never)
}

function formatText(line: string): string {
  const { level, msg, ...fields } = JSON.parse(line) as { level: number; msg?: string } & Record<string, unknown>
  const extra = Object.entries(fields).map(
    ([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`,
  )
  return `${LEVELS[level] ?? level} ${msg ?? ''}${extra.length ? ' ' + extra.join(' ') : ''}\n`
}
