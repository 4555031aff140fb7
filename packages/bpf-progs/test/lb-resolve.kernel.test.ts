/**
 * lb_resolve(), the decision the connect hooks make, run through the test-only program lb_test.o with
 * BPF_PROG_TEST_RUN on inputs this test chooses (include/lb.h, docs/reference/kmesh-dataplane.md §3). A handful
 * of table cases that pin down each branch; the exhaustive model-equality property test drives the same
 * program (issue 4).
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { privilegedSkip, tempPinDir } from '@kmesh-ts/testkit'
import {
  backendKey,
  backendValue,
  encodeIpAddr,
  encodeNetPort,
  decodeNetPort,
  endpointKey,
  endpointValue,
  frontendKey,
  frontendValue,
  LbPolicy,
  serviceKey,
  serviceValue,
  type Codec,
} from '@kmesh-ts/bpf-maps/codecs'
import { AF_INET, AF_INET6, LB_LEAVE, lbTestCtx, mapNames, programs } from '../src/index.js'
import { loadObject, mapUpdate } from './bpftool.js'

const ECONNREFUSED = 111
const EINVAL = 22

const bytes = <T>(codec: Codec<T>, v: T): Uint8Array => {
  const b = new Uint8Array(codec.size)
  codec.encode(v, b, 0)
  return b
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const ipHex = (ip: string) => {
  const b = new Uint8Array(16)
  encodeIpAddr(ip, b, 0)
  return hex(b)
}

/** Compiles the runner (test/harness/prog_run.c) against the system libbpf. */
function buildRunner(dir: string): string {
  const out = join(dir, 'prog_run')
  const src = fileURLToPath(new URL('./harness/prog_run.c', import.meta.url))
  execFileSync(process.env.CC ?? 'clang', ['-O2', '-Wall', '-o', out, src, '-lbpf'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  return out
}

interface Resolved {
  ret: number
  dnatIp: string
  dnatPort: number
  viaWaypoint: boolean
}

t.test(
  'lb_resolve on chosen inputs',
  {
    skip: privilegedSkip(
      'BPF_PROG_TEST_RUN of a BPF_PROG_TYPE_SYSCALL program (kernel >= 5.14), bpffs, and libbpf + clang for the runner',
    ),
  },
  async (t) => {
    const work = mkdtempSync(join(tmpdir(), 'kmesh-lb-test-'))
    t.teardown(() => rmSync(work, { recursive: true, force: true }))
    const runner = buildRunner(work)
    const pins = tempPinDir()
    t.teardown(() => pins.close())
    const obj = loadObject('lb_test', pins.path)
    const prog = obj.prog(programs.lbTest.name)
    const m = (name: string) => obj.map(name)

    const resolve = (
      dst: string,
      port: number,
      random: number,
      family = dst.includes(':') ? AF_INET6 : AF_INET,
    ): Resolved => {
      const ctx = new Uint8Array(lbTestCtx.size).fill(0xee) // garbage in `out` proves the program writes all of it
      encodeIpAddr(dst, ctx, lbTestCtx.in.dst)
      encodeNetPort(port, ctx, lbTestCtx.in.dstPort)
      const view = new DataView(ctx.buffer)
      view.setUint32(lbTestCtx.in.family, family, true)
      view.setUint32(lbTestCtx.in.random, random, true)
      const [retval, after] = execFileSync(runner, [prog, hex(ctx)], { encoding: 'utf8' })
        .trim()
        .split(' ') as [string, string]
      t.equal(retval, '0', 'the program returns 0')
      const res = Uint8Array.from(Buffer.from(after, 'hex'))
      const rv = new DataView(res.buffer)
      return {
        ret: rv.getInt32(lbTestCtx.ret, true),
        dnatIp: hex(res.subarray(lbTestCtx.out.dnatIp, lbTestCtx.out.dnatIp + 16)),
        dnatPort: decodeNetPort(res, lbTestCtx.out.dnatPort),
        viaWaypoint: res[lbTestCtx.out.viaWaypoint] === 1,
      }
    }
    const rewrite = (ip: string, port: number, viaWaypoint = false): Resolved => ({
      ret: 0,
      dnatIp: ipHex(ip),
      dnatPort: port,
      viaWaypoint,
    })
    const untouched: Resolved = { ret: LB_LEAVE, dnatIp: ipHex('0.0.0.0'), dnatPort: 0, viaWaypoint: false }
    const refused = (errno: number): Resolved => ({
      ret: -errno,
      dnatIp: ipHex('0.0.0.0'),
      dnatPort: 0,
      viaWaypoint: false,
    })

    // backends 1..4 (v4), 5 (v6), 6 (v4 with its own waypoint)
    const backends: [number, string, { address: string; port: number }?][] = [
      [1, '10.1.0.1'],
      [2, '10.1.0.2'],
      [3, '10.1.0.3'],
      [4, '10.1.0.4'],
      [5, 'fd00::5'],
      [6, '10.1.0.6', { address: '10.9.0.1', port: 15008 }],
    ]
    for (const [uid, address, waypoint] of backends)
      mapUpdate(
        m(mapNames.backend),
        bytes(backendKey, { backendUid: uid }),
        bytes(backendValue, { address, services: [], waypoint }),
      )
    const endpoints: [number, number, number, number][] = [
      // service, prio, index, backend
      [100, 0, 1, 1],
      [100, 0, 2, 2],
      [100, 0, 3, 3],
      [101, 1, 1, 4],
      [102, 2, 1, 3],
      [102, 2, 2, 4],
      [102, 3, 1, 1],
      [105, 0, 1, 5],
      [106, 0, 1, 6],
      [107, 0, 1, 1], // count says 2: index 2 is a hole
    ]
    for (const [serviceId, prio, backendIndex, backendUid] of endpoints) {
      mapUpdate(
        m(mapNames.endpoint),
        bytes(endpointKey, { serviceId, prio, backendIndex }),
        bytes(endpointValue, { backendUid }),
      )
    }
    const ports = [
      { servicePort: 80, targetPort: 8080 },
      { servicePort: 443, targetPort: 8443 },
      { servicePort: 80, targetPort: 9999 },
    ]
    const services: [number, number, number[], { address: string; port: number }?][] = [
      [100, LbPolicy.Random, [3]],
      [101, LbPolicy.Strict, [0, 1]],
      [102, LbPolicy.Failover, [0, 0, 2, 1]],
      [103, LbPolicy.Passthrough, [3]],
      [104, 7, [3]],
      [105, LbPolicy.Random, [1]],
      [106, LbPolicy.Random, [1]],
      [107, LbPolicy.Random, [2]],
      [108, LbPolicy.Failover, []],
      [109, LbPolicy.Random, [3], { address: '::1:2', port: 15008 }], // first word zero: all 16 bytes are tested
    ]
    for (const [serviceId, lbPolicy, prioEndpointCount, waypoint] of services) {
      mapUpdate(
        m(mapNames.service),
        bytes(serviceKey, { serviceId }),
        bytes(serviceValue, { prioEndpointCount, lbPolicy, ports, waypoint }),
      )
    }
    const frontends: [string, number][] = [
      ['10.96.0.100', 100],
      ['10.96.0.101', 101],
      ['10.96.0.102', 102],
      ['10.96.0.103', 103],
      ['10.96.0.104', 104],
      ['fd00:96::105', 105],
      ['10.96.0.106', 106],
      ['10.96.0.107', 107],
      ['10.96.0.108', 108],
      ['fd00:96::109', 109],
      ['10.1.0.1', 1],
      ['10.1.0.6', 6],
      ['10.96.0.250', 250],
    ]
    for (const [address, upstreamId] of frontends)
      mapUpdate(m(mapNames.frontend), bytes(frontendKey, { address }), bytes(frontendValue, { upstreamId }))

    t.same(resolve('10.96.7.7', 80, 0), untouched, 'no frontend: untouched')
    for (const [random, backend] of [
      [0, '10.1.0.1'],
      [1, '10.1.0.2'],
      [2, '10.1.0.3'],
      [3, '10.1.0.1'],
      [0xffffffff, '10.1.0.1'],
    ] as const) {
      t.same(
        resolve('10.96.0.100', 80, random),
        rewrite(backend, 8080),
        `Random, random ${random}: index random % 3 + 1 -> ${backend}`,
      )
    }
    t.same(resolve('10.96.0.100', 443, 1), rewrite('10.1.0.2', 8443), 'service port 443 maps to its own target port')
    t.same(resolve('10.96.0.100', 81, 1), refused(ECONNREFUSED), 'a port the service does not serve is refused')
    t.same(
      resolve('10.96.0.101', 80, 0),
      refused(ECONNREFUSED),
      'Strict with nothing at priority 0 is refused, never falls to priority 1',
    )
    t.same(
      resolve('10.96.0.102', 80, 0),
      rewrite('10.1.0.3', 8080),
      'Failover takes the first non-empty bucket (2), index 1',
    )
    t.same(resolve('10.96.0.102', 80, 1), rewrite('10.1.0.4', 8080), 'Failover, index 2 of bucket 2')
    t.same(resolve('10.96.0.108', 80, 0), refused(ECONNREFUSED), 'Failover with every bucket empty is refused')
    t.same(resolve('10.96.0.103', 80, 0), untouched, 'PASSTHROUGH leaves the connect untouched')
    t.same(resolve('10.96.0.104', 80, 0), refused(EINVAL), 'an unknown lb_policy gives EINVAL')
    t.same(resolve('fd00:96::105', 80, 9), rewrite('fd00::5', 8080), 'IPv6 VIP -> IPv6 backend, 16 bytes')
    t.same(resolve('10.96.0.106', 80, 0), rewrite('10.9.0.1', 15008, true), "the backend's waypoint wins over the DNAT")
    t.same(resolve('10.96.0.107', 80, 1), refused(ECONNREFUSED), 'a hole in the dense index (stale count) is refused')
    t.same(resolve('10.96.0.107', 80, 0), rewrite('10.1.0.1', 8080), '...while the index that exists resolves')
    t.same(
      resolve('fd00:96::109', 12345, 0),
      rewrite('::1:2', 15008, true),
      "a service's waypoint wins for every port, all 16 address bytes tested",
    )
    t.same(resolve('10.1.0.1', 8080, 0), untouched, 'direct workload access without a waypoint: untouched')
    t.same(
      resolve('10.1.0.6', 8080, 0),
      rewrite('10.9.0.1', 15008, true),
      'direct workload access with a waypoint goes to the waypoint',
    )
    t.same(resolve('10.96.0.250', 80, 0), refused(ECONNREFUSED), 'a frontend whose upstream id is gone is refused')
    t.same(
      resolve('::ffff:10.96.0.100', 80, 1),
      rewrite('::ffff:10.1.0.2', 8080),
      'a v4-mapped VIP resolves as IPv4 and the backend is mapped back',
    )
    t.same(resolve('::ffff:10.96.7.7', 80, 1), untouched, 'a v4-mapped address with no frontend: untouched')
  },
)
