// Captures what iproute2 writes to its netlink socket: `strace -e write=all` prints every sendmsg buffer as a hex
// dump, which is parsed back into bytes. Runs inside a network namespace the caller created.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export function missingStrace(): string | undefined {
  return spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0
    ? undefined
    : 'strace is not installed (apt-get install strace)'
}

export interface Capture {
  /** The bytes of the first netlink request iproute2 sent. */
  request: Buffer
  exitCode: number
  stderr: string
}

/** Runs `ip xfrm ARGS` in the namespace under strace and returns its first sendmsg/sendto buffer. */
export function captureIp(netns: string, args: string[]): Capture {
  const dir = mkdtempSync(join(tmpdir(), 'kmesh-test-strace-'))
  try {
    const out = join(dir, 'trace')
    const r = spawnSync(
      'nsenter',
      [
        `--net=/run/netns/${netns}`,
        'strace',
        '-o',
        out,
        '-e',
        'trace=sendmsg,sendto',
        '-e',
        'write=all',
        'ip',
        'xfrm',
        ...args,
      ],
      { encoding: 'utf8' },
    )
    return { request: firstBuffer(readFileSync(out, 'utf8')), exitCode: r.status ?? -1, stderr: r.stderr }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The first ` * N bytes in buffer 0` dump in strace output. Hex columns sit at fixed positions, after ` | 00000  `. */
export function firstBuffer(trace: string): Buffer {
  const lines = trace.split('\n')
  const start = lines.findIndex((l) => /^ \* \d+ bytes in buffer 0/.test(l))
  if (start < 0) throw new Error(`no buffer dump in strace output:\n${trace.slice(0, 2000)}`)
  const size = Number(/^ \* (\d+)/.exec(lines[start]!)![1])
  let hex = ''
  for (const l of lines.slice(start + 1)) {
    if (!/^ \| [0-9a-f]{5} {2}/.test(l)) break
    hex += l.slice(10, 59).replace(/ /g, '')
  }
  const b = Buffer.from(hex, 'hex')
  if (b.length !== size) throw new Error(`strace dump has ${b.length} bytes, header said ${size}`)
  return b
}

/** Netlink request bytes with the sequence number and port id zeroed (iproute2 uses the time as seq). */
export function withoutSeq(b: Buffer): Buffer {
  const c = Buffer.from(b)
  c.fill(0, 8, 16)
  return c
}

export function ipInNetns(netns: string, args: string[]): string {
  return execFileSync('nsenter', [`--net=/run/netns/${netns}`, 'ip', ...args], { encoding: 'utf8' })
}
