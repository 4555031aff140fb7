/**
 * kmesh-ts next to upstream Kmesh (issue 16), in the test VM (tools/vm, Debian 6.1): test/vm/ipsec-kmesh-interop.mjs.
 * Node K runs Kmesh's XFRM rules, written as `ip xfrm` commands from the reference with keys derived by the script's
 * own SHA-512 code; the other nodes run our controller with per-peer marks.
 *  - two nodes (all Kmesh supports): K and a kmesh-ts node talk both ways through ESP, with no XFRM error on K;
 *  - three nodes: the two kmesh-ts nodes talk; K, doing what Kmesh does for two peers, receives from neither (the
 *    second IN state collides, the IN/FWD template is the last peer's); with T1's template left, K talks to T1 only.
 */
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { runInVm, vmCommandFor, vmSkip } from '@kmesh-ts/vm'

const script = fileURLToPath(new URL('./vm/ipsec-kmesh-interop.mjs', import.meta.url))
const vm = vmSkip()
const skip =
  vm && `${vm}; the test needs QEMU (qemu-system-x86_64) for a kernel with ESP (esp4) and rfc4106(gcm(aes)) XFRM states`

t.test('a node with Kmesh’s rules and kmesh-ts nodes (in the VM)', { skip, timeout: 500_000 }, async (t) => {
  const r = await runInVm(vmCommandFor(script), { timeoutMs: 450_000, env: { IPSEC_VM_LOG_LEVEL: 'warn' } })
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
    results: {
      two: { talk: Record<string, boolean>; kmeshRules: string[] }
      three: { talk: Record<string, boolean>; talkT1Template: Record<string, boolean>; kErrors: object }
    }
  }
  t.same(result.failures, [])
  t.same(result.results.two.talk, { 'K->T': true, 'T->K': true }, 'two nodes: Kmesh and kmesh-ts talk both ways')
  t.equal(result.results.two.kmeshRules.length, 5, "Kmesh's five rules on K: IN and OUT state, IN, FWD, OUT policy")
  t.same(
    result.results.three.talk,
    {
      'K->T1': false,
      'K->T2': false,
      'T1->K': false,
      'T1->T2': true,
      'T2->K': false,
      'T2->T1': true,
    },
    'three nodes: the kmesh-ts nodes talk, the Kmesh node receives from neither',
  )
  t.same(
    result.results.three.talkT1Template,
    { 'K->T1': true, 'K->T2': false, 'T1->K': true, 'T1->T2': true, 'T2->K': false, 'T2->T1': true },
    "with T1's template left on K: K talks to T1 only",
  )
  t.comment(`K's drops with two peers: ${JSON.stringify(result.results.three.kErrors)}`)
  t.comment(`Kmesh's rules on K (two nodes):\n${result.results.two.kmeshRules.join('\n')}`)
  t.notMatch(r.stdout, /aead \S+ 0x[0-9a-f]{16}/, 'no key material in the output')
})
