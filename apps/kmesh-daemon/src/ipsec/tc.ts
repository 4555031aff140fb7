/**
 * Attaches the IPsec tc programs (bpf-progs tc_mark.o, docs/reference/kmesh-dataplane.md §1.10) with iproute2's `tc`:
 * a clsact qdisc on the device, then a direct-action cls_bpf filter on ingress that runs the program pinned in
 * bpffs. Inside a network namespace the command runs under `nsenter --net=…` (never `ip netns exec` or `tc -n`, which
 * remount /sys and hide the bpffs pins). Our filters use a fixed priority and handle so that detaching removes only
 * them. Every device is handled by one `tc -batch` process: a process start is the expensive part (seconds under
 * the test VM's emulation), not the commands.
 */
import { execFileSync } from 'node:child_process'

/** The tc priority/handle of our filters: well away from 1, where operators put theirs. */
export const TC_PRIO = 49152
export const TC_HANDLE = 0xe0

export class TcError extends Error {
  constructor(
    readonly command: string[],
    readonly stderr: string,
  ) {
    super(`${command.join(' ')} failed: ${stderr.trim() || 'no message'}`)
    this.name = 'TcError'
  }
}

export interface TcAttachment {
  dev: string
  pin: string
}

export function tcCommand(netns: string | undefined, args: string[]): string[] {
  return netns ? ['nsenter', `--net=${netns}`, 'tc', ...args] : ['tc', ...args]
}

/** The `tc -batch` lines that attach `list` (qdisc replace is a no-op on an existing clsact). */
export function attachBatch(list: TcAttachment[]): string[] {
  return list.flatMap(({ dev, pin }) => [
    `qdisc replace dev ${word(dev)} clsact`,
    `filter replace dev ${word(dev)} ingress prio ${TC_PRIO} handle ${TC_HANDLE} bpf object-pinned ${word(pin)} da`,
  ])
}

/** The `tc -batch` lines that remove our filters from `list`'s devices (the clsact qdisc stays: others may use it). */
export function detachBatch(list: TcAttachment[]): string[] {
  return list.map(({ dev }) => `filter del dev ${word(dev)} ingress prio ${TC_PRIO} handle ${TC_HANDLE} bpf`)
}

/** Runs every pinned program on its device's ingress (replacing our earlier filters there, if any): one process. */
export function attachIngress(netns: string | undefined, list: TcAttachment[]): TcAttachment[] {
  if (list.length) runBatch(tcCommand(netns, ['-batch', '-']), attachBatch(list))
  return list
}

/** Removes our filters from the devices of `list`. A vanished device or filter is not an error. */
export function detachIngress(netns: string | undefined, list: TcAttachment[]): void {
  // -force: keep going after a failed line, so one vanished device does not leave the others attached.
  if (list.length)
    runBatch(
      tcCommand(netns, ['-force', '-batch', '-']),
      detachBatch(list),
      /Cannot find device|No such file|not found|Invalid handle|Cannot find specified filter chain/i,
    )
}

/**
 * Feeds `lines` to a `tc -batch -` command. With `okWhen`, a failure whose every failed line's message matches it
 * is accepted (tc ends each failed line's message with `Command failed -:N`).
 */
function runBatch(cmd: string[], lines: string[], okWhen?: RegExp): void {
  try {
    execFileSync(cmd[0]!, cmd.slice(1), {
      input: `${lines.join('\n')}\n`,
      stdio: ['pipe', 'pipe', 'pipe'],
      encoding: 'utf8',
    })
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? (err as Error).message)
    const failed = stderr
      .split(/^Command failed -:\d+\n?/m)
      .map((s) => s.trim())
      .filter(Boolean)
    if (okWhen && failed.length && failed.every((m) => okWhen.test(m))) return
    throw new TcError([...cmd, '<<', ...lines.map((l) => `'${l}'`)], stderr)
  }
}

/** One batch word: tc splits batch lines at whitespace and has no quoting we rely on. */
function word(s: string): string {
  if (s === '' || /[\s"'\\#]/.test(s))
    throw new TcError(
      ['tc'],
      `cannot pass ${JSON.stringify(s)} in a tc batch line (whitespace, quotes, \\ or # in a device name or pin path)`,
    )
  return s
}
