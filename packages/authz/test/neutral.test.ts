// Platform-neutral and publishable alone: no Node built-in in src/, and @kmesh-ts/xds-client imported for types
// only (a value import would load gRPC), so the one run-time dependency is @kmesh-ts/ip.
import { readdirSync, readFileSync } from 'node:fs'
import t from 'tap'

const dir = new URL('../src/', import.meta.url)
for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
  const text = readFileSync(new URL(file, dir), 'utf8')
  const imports = [...text.matchAll(/^(import|export)\s+(type\s+)?[^;]*?from\s+'([^']+)'/gms)]
  for (const [, , typeOnly, spec] of imports) {
    t.notMatch(spec, /^node:|^(fs|path|net|os|crypto|buffer)$/, `${file}: no Node built-in (${spec})`)
    if (spec === '@kmesh-ts/xds-client') t.ok(typeOnly, `${file}: xds-client imported for types only`)
    else t.ok(spec === '@kmesh-ts/ip' || spec?.startsWith('./'), `${file}: ${spec} is @kmesh-ts/ip or local`)
  }
  t.notMatch(text, /\bBuffer\b|\bprocess\./, `${file}: no Buffer, no process`)
}
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
t.same(Object.keys(pkg.dependencies), ['@kmesh-ts/ip'], 'the one run-time dependency is @kmesh-ts/ip')
t.end()
