/**
 * IPsec between two nodes on a real kernel with ESP/GCM: test/vm/ipsec-two-nodes.mjs inside the test VM (tools/vm,
 * Debian 6.1). Two controllers in two node namespaces, pods behind veths marked by our tc programs, a TCP connection
 * through ESP that survives a key rotation, plaintext from a remote pod dropped by our mark-0 policies (and delivered
 * without them, as with Kmesh's rules alone), forged-decrypted plaintext dropped, and full cleanup.
 */
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { runInVm, vmCommandFor, vmSkip } from '@kmesh-ts/vm'

const script = fileURLToPath(new URL('./vm/ipsec-two-nodes.mjs', import.meta.url))
const vm = vmSkip()
/** What the guest kernel gives that this host's lacks, named in the skip. */
const skip =
  vm &&
  `${vm}; the test needs QEMU (qemu-system-x86_64) for a kernel with ESP (esp4, esp6) and rfc4106(gcm(aes)) XFRM states`

t.test('two nodes, ESP on the wire, rotation, cleanup (in the VM)', { skip, timeout: 400_000 }, async (t) => {
  const r = await runInVm(vmCommandFor(script), { timeoutMs: 360_000, env: { IPSEC_VM_LOG_LEVEL: 'warn' } })
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
    afterRotation: Record<string, { spi: number; packets: number }[]>
    plaintext: {
      tmplMismatch: [number, number]
      noPols: [number, number]
      forged: [number, number]
      usedReject: string[]
      parityAnswered: boolean
    }
    timings: Record<string, number>
  }
  t.same(result.failures, [])
  for (const node of ['nodeA', 'nodeB']) {
    t.ok(
      result.afterRotation[node]!.every((s) => s.spi === 2 && s.packets > 0),
      `${node}: SPI 2 states carry ESP traffic after the rotation`,
    )
  }
  const p = result.plaintext
  t.ok(
    p.tmplMismatch[1] - p.tmplMismatch[0] >= 2,
    `plaintext from pod A dropped on node B: XfrmInTmplMismatch ${p.tmplMismatch[0]} -> ${p.tmplMismatch[1]}`,
  )
  t.ok(p.usedReject.includes('fwd'), 'by our FWD policy for unmarked traffic')
  t.ok(p.parityAnswered, 'and answered with Kmesh’s rules alone')
  t.ok(
    p.forged[1] > p.forged[0],
    `plaintext forged as decrypted dropped: XfrmInTmplMismatch ${p.forged[0]} -> ${p.forged[1]}`,
  )
  t.comment(`guest phases (ms): ${JSON.stringify(result.timings)}`)
  t.notMatch(r.stdout, /aead \S+ 0x[0-9a-f]{16}/, 'no key material in the output')
})
