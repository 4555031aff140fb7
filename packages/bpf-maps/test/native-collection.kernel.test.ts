import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { privilegedSkip, runNodeInCgroup, tempCgroup, tempPinDir } from '@kmesh-ts/testkit'
import {
  BpfError,
  BpfLink,
  BpfMap,
  Collection,
  SpecMismatchError,
  programStats,
  progArraySet,
  setStatsEnabled,
} from '../src/index.js'

const skip = privilegedSkip(
  'BPF_PROG_TYPE_CGROUP_SOCK_ADDR attached by BPF links (kernel >= 5.7), BPF_PROG_TYPE_SYSCALL test runs (kernel >= 5.14), BPF_MAP_TYPE_PROG_ARRAY, a cgroup v2 mount, bpffs and clang',
)
const fixtures = new URL('./fixtures/', import.meta.url).pathname

/** Compiles a fixture the way the project builds BPF (toolchain.md): clang -target bpf -O2 -g. */
function compile(name: string, outDir: string): string {
  const out = join(outDir, `${name}.o`)
  execFileSync('clang', [
    '-target',
    'bpf',
    '-O2',
    '-g',
    '-I/usr/include/x86_64-linux-gnu',
    '-c',
    join(fixtures, `${name}.c`),
    '-o',
    out,
  ])
  return out
}

let objectPath = ''
let rejectedPath = ''
if (!skip) {
  const dir = mkdtempSync(join(tmpdir(), 'kmesh-bpf-maps-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  objectPath = compile('collection', dir)
  rejectedPath = compile('rejected', dir)
}

/** 127.10.0.50 in the byte order of bpf_sock_addr.user_ip4 (network order) as the map's u32 key. */
const ip = (a: string): Buffer => Buffer.from(a.split('.').map(Number))

/** Starts an HTTP-less TCP server on 127.0.0.1 that answers every connection with "hello". */
async function helloServer(t: Tap.Test): Promise<number> {
  const server: Server = createServer((s) => s.end('hello'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const addr = server.address()
  if (!addr || typeof addr === 'string') throw new Error('no server address')
  return addr.port
}

/** Connects from inside the cgroup and reports what happened: the greeting, or the error code. */
function connectFrom(cgroup: string, host: string, port: number): Promise<string> {
  const script = `import { connect } from 'node:net'
const s = connect({ host: '${host}', port: ${port} })
let data = ''
s.on('data', (d) => (data += d))
s.on('end', () => { console.log(data); process.exit(0) })
s.on('error', (e) => { console.log(e.code); process.exit(0) })
setTimeout(() => { console.log('TIMEOUT'); process.exit(0) }, 3000)`
  return runNodeInCgroup(cgroup, script).then((out) => out.trim())
}

t.test('load: maxEntries override, pins under pinRoot/maps, programs with their sections', { skip }, async (t) => {
  const pins = tempPinDir()
  t.teardown(() => pins.close())
  const coll = Collection.load({ objectPath, pinRoot: pins.path, maxEntries: { km_test_redirect: 1000 } })
  t.teardown(() => coll.close())

  t.same([...coll.maps.keys()].sort(), ['km_test_progs', 'km_test_redirect'])
  t.same([...coll.programs.keys()].sort(), ['connect4_redirect', 'connect4_tail', 'lookup_redirect'])
  const info = coll.map('km_test_redirect').info()
  t.equal(info.maxEntries, 1000, 'the kernel map has the capacity set at load, not the 16 in the C source')
  t.equal(coll.map('km_test_progs').info().maxEntries, 4, 'maps without an override keep the object value')
  t.equal(coll.map('km_test_redirect').spec.name, 'km_test_redirect', 'the full ELF name, not the 15-byte kernel name')
  t.equal(info.kernelName, 'km_test_redirec')
  t.equal(coll.program('connect4_redirect').sectionName, 'cgroup/connect4')
  t.equal(coll.program('lookup_redirect').sectionName, 'syscall')
  t.ok(existsSync(join(pins.path, 'maps', 'km_test_redirect')))
  t.ok(existsSync(join(pins.path, 'maps', 'km_test_progs')))
  const progPin = join(pins.path, 'lookup_prog')
  coll.program('lookup_redirect').pin(progPin)
  t.throws(() => BpfMap.openPinned(progPin), /lookup_prog is not a BPF map \(anon_inode:bpf-prog\)/)
  t.throws(() => coll.map('km_nope'), /has no map named km_nope \(it has km_test_redirect, km_test_progs\)/)
  t.throws(
    () => Collection.load({ objectPath, pinRoot: pins.path, maxEntries: { km_typo: 5 } }),
    /maxEntries\.km_typo: .* has no map named km_typo/,
  )
})

t.test(
  'a second load reuses the pinned map (same id, same contents); a changed spec is refused by name',
  { skip },
  async (t) => {
    const pins = tempPinDir()
    t.teardown(() => pins.close())
    const first = Collection.load({ objectPath, pinRoot: pins.path, maxEntries: { km_test_redirect: 64 } })
    first.map('km_test_redirect').put(ip('127.10.0.1'), ip('127.0.0.1'))
    const id = first.map('km_test_redirect').info().id
    first.close()

    const second = Collection.load({ objectPath, pinRoot: pins.path, maxEntries: { km_test_redirect: 64 } })
    t.teardown(() => second.close())
    t.equal(second.map('km_test_redirect').info().id, id, 'same kernel map')
    t.same(second.map('km_test_redirect').get(ip('127.10.0.1')), ip('127.0.0.1'), 'contents survived the reload')

    const pinPath = join(pins.path, 'maps', 'km_test_redirect')
    const err = t.throws(() =>
      Collection.load({ objectPath, pinRoot: pins.path, maxEntries: { km_test_redirect: 128 } }),
    ) as SpecMismatchError
    t.ok(err instanceof SpecMismatchError)
    t.equal(err.mapName, 'km_test_redirect')
    t.match(
      err.message,
      `pinned map ${pinPath} cannot be reused for map km_test_redirect: maxEntries 64 in the kernel, 128 expected`,
    )

    const fresh = Collection.load({
      objectPath,
      pinRoot: pins.path,
      maxEntries: { km_test_redirect: 128 },
      reusePinned: false,
    })
    t.teardown(() => fresh.close())
    t.not(fresh.map('km_test_redirect').info().id, id, 'reusePinned: false replaces the pin with a new map')
    t.equal(fresh.map('km_test_redirect').count(), 0)
    t.equal(fresh.map('km_test_redirect').info().maxEntries, 128)

    fresh.unpinMaps()
    t.notOk(existsSync(pinPath), 'unpinMaps removes the pins')
  },
)

t.test(
  'attachCgroup: connect4 rewrites connects from the cgroup; pinned link survives close; detach ends it',
  { skip },
  async (t) => {
    const pins = tempPinDir()
    t.teardown(() => pins.close())
    const cg = tempCgroup()
    t.teardown(() => cg.close())
    const port = await helloServer(t)
    const coll = Collection.load({ objectPath, pinRoot: pins.path })
    t.teardown(() => coll.close())
    coll.map('km_test_redirect').put(ip('127.10.0.50'), ip('127.0.0.1'))

    t.equal(await connectFrom(cg.path, '127.10.0.50', port), 'ECONNREFUSED', 'before attach nothing listens at the VIP')
    setStatsEnabled(true)
    t.teardown(() => setStatsEnabled(false))
    const prog = coll.program('connect4_redirect')
    const before = programStats(prog)
    const link = prog.attachCgroup(cg.path)
    t.teardown(() => link.close())
    t.equal(await connectFrom(cg.path, '127.10.0.50', port), 'hello', 'the hook sent the connect to 127.0.0.1')
    t.equal(await connectFrom(cg.path, '127.10.0.51', port), 'ECONNREFUSED', 'an address not in the map is left alone')
    const after = programStats(prog)
    t.ok(
      after.runCount - before.runCount >= 2n,
      `the kernel counted the hook's runs (${after.runCount - before.runCount})`,
    )
    t.ok(after.runTimeNs > before.runTimeNs)

    const linkPin = join(pins.path, 'connect4_link')
    link.pin(linkPin)
    t.equal(link.pinPath, linkPin)
    link.close()
    t.equal(
      await connectFrom(cg.path, '127.10.0.50', port),
      'hello',
      'a pinned link keeps the program attached after its handle closes',
    )

    const reopened = BpfLink.openPinned(linkPin)
    t.teardown(() => reopened.close())
    reopened.detach()
    t.equal(
      await connectFrom(cg.path, '127.10.0.50', port),
      'ECONNREFUSED',
      'detach ends the attachment although the link is pinned',
    )
    reopened.unpin()
    t.notOk(existsSync(linkPin))

    const unpinned = prog.attachCgroup(cg.path)
    unpinned.close()
    t.equal(await connectFrom(cg.path, '127.10.0.50', port), 'ECONNREFUSED', 'closing an unpinned link detaches it')

    const bad = t.throws(() => prog.attachCgroup(join(cg.path, 'missing'))) as BpfError
    t.equal(bad.code, 'ENOENT')
    t.throws(
      () => BpfLink.openPinned(join(pins.path, 'maps', 'km_test_redirect')),
      /is not a BPF link \(anon_inode:bpf-map\)/,
    )
  },
)

t.test(
  'testRun of the syscall program: the context goes in, the program writes its answer back',
  { skip },
  async (t) => {
    const coll = Collection.load({ objectPath, pinMaps: false })
    t.teardown(() => coll.close())
    coll.map('km_test_redirect').put(ip('127.10.0.7'), ip('127.0.0.9'))
    const ctxIn = Buffer.alloc(12)
    ip('127.10.0.7').copy(ctxIn, 0)
    const hit = coll.program('lookup_redirect').testRun({ ctxIn, ctxOutSize: 12 })
    t.equal(hit.retval, 7)
    t.equal(hit.ctxOut?.toString('hex'), '7f0a0007' + '7f000009' + '01000000', 'key, value and found=1, byte for byte')
    t.equal(ctxIn.readUInt32LE(8), 0, "the caller's buffer is not modified")

    const miss = coll.program('lookup_redirect').testRun({ ctxIn: Buffer.alloc(12) })
    t.equal(miss.ctxOut?.toString('hex'), '00'.repeat(12), 'not found: value 0, found 0')

    const err = t.throws(() =>
      coll.program('lookup_redirect').testRun({ ctxIn: Buffer.alloc(12), dataIn: Buffer.alloc(4) }),
    ) as BpfError
    t.equal(err.code, 'EINVAL', 'syscall programs take no packet data')
    t.match(err.message, /test run of program lookup_redirect \(syscall\) failed: EINVAL/)
  },
)

t.test(
  'progArraySet installs a tail-call target in a program array (no batch there: the binding loops)',
  { skip },
  async (t) => {
    const coll = Collection.load({ objectPath, pinMaps: false })
    t.teardown(() => coll.close())
    const progs = coll.map('km_test_progs')
    progArraySet(progs, 2, coll.program('connect4_tail'))
    const slots = [...progs.entries()].map(([k, v]) => [k.readUInt32LE(0), v.readUInt32LE(0)])
    t.same(
      slots.map(([index]) => index),
      [2],
      'only slot 2 holds a program',
    )
    t.ok(slots[0]?.[1], 'a lookup from userspace answers the program id')
    t.throws(
      () => progArraySet(progs, 9, coll.program('connect4_tail')),
      /E2BIG|index/,
      'an index past max_entries is refused',
    )
    t.throws(
      () => progArraySet(coll.map('km_test_redirect'), 0, coll.program('connect4_tail')),
      /is not a program array/,
    )
  },
)

t.test('a program the verifier rejects: the error carries the verifier log', { skip }, async (t) => {
  const err = t.throws(() => Collection.load({ objectPath: rejectedPath, pinMaps: false })) as BpfError
  t.ok(err instanceof BpfError)
  t.equal(err.op, 'bpf_object__load')
  t.equal(err.code, 'EACCES')
  t.match(err.message, `loading BPF object ${rejectedPath} failed: EACCES`)
  t.match(err.message, /reads_unchecked_value/)
  t.match(err.message, /invalid mem access 'map_value_or_null'/, 'the verifier says why')

  const missing = t.throws(() => Collection.load({ objectPath: '/nonexistent/x.o' })) as Error
  t.match(missing.message, /CollectionOptions\.objectPath: \/nonexistent\/x\.o does not exist/)
})
