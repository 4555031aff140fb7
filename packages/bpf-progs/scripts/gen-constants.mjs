#!/usr/bin/env node
// Generates packages/kernel-abi/src/constants.ts from the C headers, so TypeScript never copies a data-path
// constant by hand. The macro values are clang's own (`clang -E -dM` over every include/*.h with the build's
// flags), so include guards, #ifndef fallbacks and macros defined through other macros come out as the
// compiler sees them; the map declarations are read from the header text.
// Only the names listed in EXPORTS leave C: adding one here is the decision to make it userspace ABI.
// The output is committed (the npm package works without clang); test/constants.test.ts fails when it is stale.
// Usage: gen-constants.mjs            write the file (untouched when already equal)
//        gen-constants.mjs --stdout   print it
//        gen-constants.mjs --check    exit 1 when the committed file differs
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cflags, clang, clangFailure, includeDir, pkg } from './cflags.mjs'

export const outputFile = join(pkg, '..', 'kernel-abi', 'src', 'constants.ts')

/** What userspace may import, by owner. `header` names a file of include/ (it must #define the name itself)
 * or a system header (the value is whatever clang finds there for the BPF target). */
const EXPORTS = [
  { header: 'kmesh_types.h', what: 'record capacities', names: ['PRIO_COUNT', 'MAX_PORT_COUNT', 'MAX_SERVICE_COUNT'] },
  {
    header: 'kmesh_types.h',
    what: 'service_value.lb_policy',
    names: ['LB_POLICY_RANDOM', 'LB_POLICY_STRICT', 'LB_POLICY_FAILOVER', 'LB_POLICY_PASSTHROUGH'],
  },
  { header: 'addr.h', what: 'address families of lb_input.family', names: ['AF_INET', 'AF_INET6'] },
  {
    header: 'lb_types.h',
    what: 'lb_resolve() return codes other than a negative errno',
    names: ['LB_REWRITE', 'LB_LEAVE'],
  },
  {
    header: 'linux/errno.h',
    what: 'the errnos a refused connect returns (include/lb_types.h)',
    names: ['ECONNREFUSED', 'EINVAL', 'EAFNOSUPPORT'],
  },
  {
    header: 'manage.h',
    what: 'manage control connects',
    names: ['MANAGE_CONTROL_IP4', 'MANAGE_ENROL_PORT', 'MANAGE_UNENROL_PORT'],
  },
  {
    header: 'maps.h',
    what: 'tail-call slots userspace fills',
    names: ['TAIL_CALL_CONNECT4_INDEX', 'TAIL_CALL_CONNECT6_INDEX', 'TAIL_CALL_SLOTS'],
  },
  {
    header: 'ipsec.h',
    what: 'skb marks the tc programs set and the XFRM policies match',
    names: [
      'IPSEC_MARK_ENCRYPT',
      'IPSEC_MARK_DECRYPT',
      'IPSEC_MARK_PEER',
      'IPSEC_MARK_PEER_MASK',
      'IPSEC_PEER_ID_SHIFT',
      'IPSEC_MAX_PEERS',
    ],
  },
  {
    header: 'telemetry.h',
    what: 'connection records of the sockops program: events, directions, ring buffer size',
    names: [
      'TELEMETRY_EVENT_OPEN',
      'TELEMETRY_EVENT_CLOSE',
      'TELEMETRY_DIR_INBOUND',
      'TELEMETRY_DIR_OUTBOUND',
      'TELEMETRY_RINGBUF_BYTES',
    ],
  },
  {
    header: 'sendmsg.h',
    what: "the original-destination TLV prefix a waypoint receives (Kmesh's)",
    names: ['TLV_ORG_DST_ADDR', 'TLV_PAYLOAD', 'TLV_HEADER_SIZE', 'TLV_PREFIX_SIZE4', 'TLV_PREFIX_SIZE6'],
  },
  {
    header: 'authz.h',
    what: 'the authorization decision diagram: node kinds, verdicts, slots, key tags and per-generation limits',
    names: [
      'AUTHZ_DIM_LEAF',
      'AUTHZ_DIM_PORT',
      'AUTHZ_DIM_SRC_IP',
      'AUTHZ_DIM_IDENTITY',
      'AUTHZ_MAX_STEPS',
      'AUTHZ_VERDICT_ALLOW',
      'AUTHZ_VERDICT_DENY',
      'AUTHZ_NO_POLICY',
      'AUTHZ_MAX_POLICIES',
      'AUTHZ_NO_IDENTITY',
      'AUTHZ_FAMILY_V4',
      'AUTHZ_FAMILY_V6',
      'AUTHZ_MAX_ROOTS',
      'AUTHZ_MAX_SOURCES',
      'AUTHZ_MAX_NODES',
      'AUTHZ_MAX_EDGES',
      'AUTHZ_SRC_FIXED_BITS',
    ],
  },
]

const headers = () =>
  readdirSync(includeDir)
    .filter((f) => f.endsWith('.h'))
    .sort()

/** Every macro clang defines after including every header of include/: name -> replacement text. */
function clangMacros() {
  const unit = headers()
    .map((h) => `#include "${h}"\n`)
    .join('')
  let out
  try {
    out = execFileSync(clang, [...cflags, '-E', '-dM', '-x', 'c', '-'], {
      input: unit,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'inherit'],
    })
  } catch (err) {
    throw new Error(`gen-constants: clang -E -dM over include/*.h failed: ${clangFailure(err)}`)
  }
  const macros = new Map()
  for (const line of out.split('\n')) {
    const m = /^#define (\w+) (.*)$/.exec(line)
    if (m) macros.set(m[1], m[2].trim())
  }
  return macros
}

const INTEGER = /^\(?\s*(0[xX][0-9a-fA-F]+|0|[1-9][0-9]*)[uUlL]*\s*\)?$/

/** A macro as a TypeScript literal (hex stays hex), through macros that name other macros. */
function literal(macros, name, seen = []) {
  const text = macros.get(name)
  if (text === undefined)
    throw new Error(`gen-constants: ${[...seen, name].join(' -> ')} is not defined by include/*.h or what they include`)
  const m = INTEGER.exec(text)
  if (m) {
    if (BigInt(m[1]) > BigInt(Number.MAX_SAFE_INTEGER))
      throw new Error(`gen-constants: ${name} = ${text} is beyond a safe JavaScript integer`)
    return m[1].replace(/^0X/, '0x')
  }
  if (/^\w+$/.test(text) && !seen.includes(text)) return literal(macros, text, [...seen, name])
  throw new Error(`gen-constants: ${name} is "${text}", not an integer literal (export only plain numbers)`)
}

/** Every `struct { ... } NAME SEC(".maps");` of include/, with the max_entries it declares (0 when none). */
function mapDeclarations(macros) {
  const maps = []
  for (const header of headers()) {
    const text = readFileSync(join(includeDir, header), 'utf8')
    for (const m of text.matchAll(/struct\s*\{([^}]*)\}\s*(\w+)\s+SEC\("\.maps"\)\s*;/g)) {
      const entries = /__uint\(\s*max_entries\s*,\s*(\w+)\s*\)/.exec(m[1])?.[1]
      const maxEntries = entries === undefined ? '0' : /^\d+$/.test(entries) ? entries : literal(macros, entries)
      maps.push({ name: m[2], header, maxEntries: Number(maxEntries) })
    }
  }
  const names = maps.map((m) => m.name)
  const twice = names.filter((n, i) => names.indexOf(n) !== i)
  if (twice.length > 0) throw new Error(`gen-constants: maps declared twice in include/: ${twice.join(', ')}`)
  return maps
}

/** The TypeScript module, as text. */
export function generate() {
  const macros = clangMacros()
  const lines = [
    `// Generated from packages/bpf-progs/include/*.h by packages/bpf-progs/scripts/gen-constants.mjs — do not edit.`,
    `// Values are clang's (-target bpf); packages/bpf-progs/test/constants.test.ts proves this file current.`,
  ]
  for (const { header, what, names } of EXPORTS) {
    const own = !header.includes('/')
    if (own) {
      const text = readFileSync(join(includeDir, header), 'utf8')
      for (const name of names) {
        if (!new RegExp(`^\\s*#\\s*define\\s+${name}\\b`, 'm').test(text))
          throw new Error(`gen-constants: include/${header} does not #define ${name}`)
      }
    }
    lines.push('', `/** ${own ? `include/${header}` : `<${header}>`}: ${what}. */`)
    for (const name of names) lines.push(`export const ${name} = ${literal(macros, name)}`)
  }
  lines.push(
    '',
    '/** Every map the programs declare (ELF name = pin name), the header declaring it, and the max_entries written',
    ' * there (upstream Kmesh defaults; userspace sets the real capacity at load time; 0 = none, e.g. SK_STORAGE). */',
    'export const BPF_MAPS = {',
    ...mapDeclarations(macros).map((m) => `  ${m.name}: { header: '${m.header}', maxEntries: ${m.maxEntries} },`),
    '} as const',
    '',
  )
  return lines.join('\n')
}

function main(argv) {
  const text = generate()
  if (argv.includes('--stdout')) return void process.stdout.write(text)
  let committed
  try {
    committed = readFileSync(outputFile, 'utf8')
  } catch {
    committed = undefined
  }
  const where = relative(process.cwd(), outputFile)
  if (argv.includes('--check')) {
    if (committed === text) return void console.log(`gen-constants: ${where} is current`)
    console.error(`gen-constants: ${where} is stale: run node packages/bpf-progs/scripts/gen-constants.mjs`)
    process.exit(1)
  }
  if (committed === text) return void console.log(`gen-constants: ${where} unchanged`)
  writeFileSync(outputFile, text)
  console.log(`gen-constants: wrote ${where}`)
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2))
  } catch (err) {
    console.error(err.message)
    process.exit(1)
  }
}
