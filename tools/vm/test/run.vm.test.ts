import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { runInVm, vmCommandFor, vmSkip } from '../src/index.js'

const vm = vmSkip()
const skip = vm && `${vm}; the test needs QEMU (qemu-system-x86_64, TCG) and the VM cache from tools/vm/fetch.sh`

// One boot: the guest is the stock Debian kernel, sees the host's files, can load ESP/GCM on demand, and its
// output, stderr and exit code come back.
t.test('a script runs in the VM and its exit code and output come back', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kmesh-vm-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const script = join(dir, 'probe.sh')
  writeFileSync(
    script,
    [
      'set -e',
      'echo "kernel $(uname -r)"',
      `echo "marker $(cat ${join(dir, 'marker')})"`, // a host file, written after the script: the share is live
      'modprobe esp4 && modprobe xfrm_user',
      'ip netns add vmtest && ip -n vmtest link set lo up',
      "ip -n vmtest xfrm state add src 10.0.0.1 dst 10.0.0.2 proto esp spi 7 mode tunnel aead 'rfc4106(gcm(aes))' 0x$(printf '11%.0s' $(seq 36)) 128",
      'ip -n vmtest xfrm state | grep -c "proto esp spi 0x00000007"',
      'grep -q " /sys/fs/bpf bpf" /proc/mounts && echo bpffs',
      'echo to-stderr >&2',
      'exit 7',
    ].join('\n'),
  )
  writeFileSync(join(dir, 'marker'), 'hello-from-host')
  const r = await runInVm(vmCommandFor(script), { timeoutMs: 120_000 })
  t.comment(`boot ${r.timings.bootMs} ms, job ${r.timings.jobMs} ms, total ${r.timings.totalMs} ms`)
  if (r.code !== 7) t.comment(r.console.slice(-3000))
  t.equal(r.error, undefined)
  t.equal(r.code, 7)
  t.match(r.stdout, /^kernel 6\.1\./m)
  t.match(r.stdout, /^marker hello-from-host$/m)
  t.match(r.stdout, /^1$/m, 'an ESP tunnel state with rfc4106(gcm(aes)) installs in the guest')
  t.match(r.stdout, /^bpffs$/m)
  t.equal(r.stderr.trim(), 'to-stderr')
})

t.test('a VM that outlives its timeout is killed and reported', { skip }, async (t) => {
  const r = await runInVm(['sleep', '600'], { timeoutMs: 3_000 })
  t.equal(r.code, null)
  t.match(r.error, /timed out after 3000 ms/)
  t.ok(r.timings.totalMs < 10_000)
})

t.test('vmCommandFor picks the interpreter by extension', async (t) => {
  t.same(vmCommandFor('/x/a.sh', ['1']), ['sh', '/x/a.sh', '1'])
  t.same(vmCommandFor('/x/a.mjs'), [process.execPath, '/x/a.mjs'])
  t.throws(() => vmCommandFor('/x/a.py'), /do not know how to run/)
})
