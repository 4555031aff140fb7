/**
 * The positive-integer options of a benchmark: `--name N`, or its environment variable, or the default; `--help`
 * prints them and exits. One place, so every benchmark reads and documents its knobs the same way.
 */
import { parseArgs } from 'node:util'

/** `spec`: name -> { env, default, help }. Returns name -> number. */
export function positiveIntOptions(usage, spec) {
  const { values } = parseArgs({
    options: {
      help: { type: 'boolean', short: 'h' },
      ...Object.fromEntries(Object.keys(spec).map((k) => [k, { type: 'string' }])),
    },
  })
  if (values.help) {
    console.log(`usage: ${usage}\n`)
    for (const [k, o] of Object.entries(spec))
      console.log(`  --${k} N`.padEnd(20) + `${o.env.padEnd(24)} ${o.help} (default ${o.default})`)
    process.exit(0)
  }
  const out = {}
  for (const [k, o] of Object.entries(spec)) {
    const raw = values[k] ?? process.env[o.env]
    const n = raw === undefined ? o.default : Number(raw)
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${k} (${o.env}): expected a positive integer, got ${raw}`)
    out[k] = n
  }
  return out
}
