/**
 * The codecs equal the C structs: reads the BTF that clang kept in the compiled connect object and proves,
 * for every record in `recordLayouts`, that the C struct's size is the codec's size and every listed field
 * sits at the listed byte offset (conventions: "every struct that crosses into userspace is declared once
 * and checked by BTF").
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { authzRecordLayouts, recordLayouts, telemetryRecordLayouts } from '../src/codecs/index.js'

const objectFile = fileURLToPath(new URL('../../bpf-progs/obj/cgroup_sock.o', import.meta.url))
const authzObjectFile = fileURLToPath(new URL('../../bpf-progs/obj/xdp_authz.o', import.meta.url))
const sockopsObjectFile = fileURLToPath(new URL('../../bpf-progs/obj/sockops.o', import.meta.url))

interface BtfMember {
  name: string
  type_id: number
  bits_offset: number
}
interface BtfType {
  id: number
  kind: string
  name: string
  size?: number
  members?: BtfMember[]
}

function readBtf(file: string): Map<number, BtfType> {
  if (!existsSync(file))
    throw new Error(`${file} is missing: build @kmesh-ts/bpf-progs first (node packages/bpf-progs/scripts/build.mjs)`)
  const json = execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', file, 'format', 'raw'], { encoding: 'utf8' })
  const { types } = JSON.parse(json) as { types: BtfType[] }
  return new Map(types.map((ty) => [ty.id, ty]))
}

/** Member name -> byte offset, with the members of anonymous structs/unions lifted into their parent. */
function memberOffsets(
  types: Map<number, BtfType>,
  ty: BtfType,
  base = 0,
  out = new Map<string, number>(),
): Map<string, number> {
  for (const m of ty.members ?? []) {
    const at = base + m.bits_offset / 8
    const inner = types.get(m.type_id)
    if (m.name === '(anon)' && inner) memberOffsets(types, inner, at, out)
    else out.set(m.name, at)
  }
  return out
}

function checkLayouts(
  t: Tap.Test,
  file: string,
  layouts: Record<string, { codec: { cStruct: string; size: number }; fields: Record<string, number> }>,
  atLeast: number,
): void {
  const types = readBtf(file)
  const entries = Object.entries(layouts)
  t.ok(entries.length >= atLeast, `${entries.length} records listed`)
  for (const [cStruct, { codec, fields }] of entries) {
    t.test(cStruct, async (t) => {
      const matches = [...types.values()].filter((ty) => ty.kind === 'STRUCT' && ty.name === cStruct)
      t.equal(matches.length, 1, `struct ${cStruct} appears once in the BTF of ${file}`)
      const ty = matches[0]
      if (!ty) return
      t.equal(codec.cStruct, cStruct, 'the codec names its C struct')
      t.equal(ty.size, codec.size, `sizeof(struct ${cStruct}) == codec.size`)
      const offsets = memberOffsets(types, ty)
      t.same([...offsets.keys()].sort(), Object.keys(fields).sort(), `the codec lists every field of ${cStruct}`)
      for (const [field, offset] of Object.entries(fields)) {
        t.equal(offsets.get(field), offset, `offsetof(struct ${cStruct}, ${field}) == ${offset}`)
      }
    })
  }
}

t.test('every codec equals its C struct in the BTF of cgroup_sock.o', async (t) => {
  checkLayouts(t, objectFile, recordLayouts, 10)
})

t.test('every authorization codec equals its C struct in the BTF of xdp_authz.o', async (t) => {
  checkLayouts(t, authzObjectFile, authzRecordLayouts, 8)
})

t.test('every telemetry codec equals its C struct in the BTF of sockops.o', async (t) => {
  checkLayouts(t, sockopsObjectFile, telemetryRecordLayouts, 1)
})

t.test('the sizes the kernel side agreed on with upstream Kmesh', async (t) => {
  const expected: Record<string, number> = {
    frontend_key: 16,
    frontend_value: 4,
    service_key: 4,
    service_value: 132,
    endpoint_key: 12,
    endpoint_value: 4,
    backend_key: 4,
    backend_value: 80,
    manager_key: 16,
    sock_storage_data: 64,
  }
  const types = [...readBtf(objectFile).values()]
  for (const [name, size] of Object.entries(expected)) {
    t.equal(
      types.find((ty) => ty.kind === 'STRUCT' && ty.name === name)?.size,
      size,
      `sizeof(struct ${name}) == ${size}`,
    )
    t.equal(recordLayouts[name]?.codec.size, size, `codec ${name} is ${size} bytes`)
  }
})
