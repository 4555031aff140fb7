/**
 * IPsec beyond two nodes (issue 16) on a real kernel with ESP/GCM: test/vm/ipsec-nodes.mjs inside the test VM
 * (tools/vm, Debian 6.1), one boot for a three-node and a five-node cluster of network namespaces on one bridge.
 * Every ordered pair of pods exchanges a line over TCP through ESP, and the per-state counters show that every pair
 * used its own SAs (one IN state per remote peer, told apart by its mark); three nodes: a key rotation with a
 * connection flowing, plaintext from a remote pod refused, a node rebooting (re-derived keys); five nodes: a node
 * leaving (its rules gone everywhere, the others untouched).
 */
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { runInVm, vmCommandFor, vmSkip } from '@kmesh-ts/vm'

const script = fileURLToPath(new URL('./vm/ipsec-nodes.mjs', import.meta.url))
const vm = vmSkip()
const skip =
  vm && `${vm}; the test needs QEMU (qemu-system-x86_64) for a kernel with ESP (esp4) and rfc4106(gcm(aes)) XFRM states`

interface Sa {
  dir: 'in' | 'out'
  peer: string
  spi: number
  mark: string
  packets: number
  bytes: number
}

t.test('three and five nodes, every pair its own SAs (in the VM)', { skip, timeout: 660_000 }, async (t) => {
  const r = await runInVm(vmCommandFor(script, ['3,5']), {
    timeoutMs: 600_000,
    env: { IPSEC_VM_LOG_LEVEL: 'warn' },
  })
  t.comment(`VM: boot ${r.timings.bootMs} ms, job ${r.timings.jobMs} ms, total ${r.timings.totalMs} ms`)
  for (const line of r.stdout.split('\n')) if (/^\[[\d.]+s\] /.test(line)) t.comment(line)
  if (r.code !== 0) t.comment(`stderr:\n${r.stderr.slice(-4000)}\nconsole:\n${r.console.slice(-2000)}`)
  t.equal(r.error, undefined, 'the VM ran the script to the end')
  t.equal(r.code, 0, 'every check inside the VM passed')
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '))
  t.ok(line, 'the script reported its result')
  if (!line) return
  const result = JSON.parse(line.slice(7)) as {
    failures: string[]
    results: Record<
      string,
      { countersSpi1: Record<string, Sa[]>; node1Rules?: string; timings: object; seconds: number }
    >
    timings: object
  }
  t.same(result.failures, [])
  for (const n of ['3', '5']) {
    const counters = result.results[n]?.countersSpi1 ?? {}
    t.equal(Object.keys(counters).length, Number(n), `${n} nodes reported their SAs`)
    for (const [node, sas] of Object.entries(counters)) {
      const inbound = sas.filter((s) => s.dir === 'in')
      t.equal(inbound.length, Number(n) - 1, `${n} nodes, node ${node}: one IN SA per remote peer`)
      t.equal(new Set(inbound.map((s) => s.mark)).size, Number(n) - 1, `node ${node}: each IN SA with its own mark`)
      t.ok(
        sas.every((s) => s.packets > 0),
        `node ${node}: every SA counted packets (${sas.map((s) => `${s.dir} ${s.peer}${s.mark ? ` mark ${s.mark}` : ''} ${s.packets}`).join(', ')})`,
      )
    }
    t.comment(
      `${n} nodes: ${result.results[n]?.seconds} s in the guest, phases (ms) ${JSON.stringify(result.results[n]?.timings)}`,
    )
  }
  const rules = result.results['3']?.node1Rules ?? ''
  t.match(rules, /mark 0x100c0\/0xffff00ff/, 'node 1 of 3: an IN state with peer mark 1')
  t.match(rules, /mark 0x200c0\/0xffff00ff/, 'and one with peer mark 2')
  t.match(rules, /tmpl src 0\.0\.0\.0 dst 192\.168\.77\.1/, 'the 0xd0 IN/FWD template takes any source')
  t.notMatch(r.stdout, /aead \S+ 0x[0-9a-f]{16}/, 'no key material in the output')
})
