/**
 * Attaches the IPsec tc programs (bpf-progs tc_mark.o, reference/kmesh-dataplane.md §1.10) with iproute2's `tc`:
 * a clsact qdisc on the device, then a direct-action cls_bpf filter on ingress that runs the program pinned in
 * bpffs. Inside a network namespace the command runs under `nsenter --net=…` (never `ip netns exec`, which remounts
 * /sys and hides the bpffs pins). Our filters use a fixed priority and handle so that detaching removes only them.
 */
import { execFileSync } from 'node:child_process'

/** The tc priority/handle of our filters: well away from 1, where operators put theirs. */
export const TC_PRIO = 49152
export const TC_HANDLE = 0xe0

export class TcError extends Error {
  constructor(readonly command: string[], readonly stderr: string) {
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

function run(cmd: string[], okWhen?: RegExp): void {
  try {
    execFileSync(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? (err as Error).message)
    if (okWhen?.test(stderr)) return
    throw new TcError(cmd, stderr)
  }
}

/** Runs the pinned program on `dev`'s ingress (replacing our earlier filter there, if any). */
export function attachIngress(netns: string | undefined, dev: string, pin: string): TcAttachment {
  run(tcCommand(netns, ['qdisc', 'add', 'dev', dev, 'clsact']), /File exists/)
  run(tcCommand(netns, ['filter', 'replace', 'dev', dev, 'ingress', 'prio', String(TC_PRIO), 'handle', String(TC_HANDLE), 'bpf', 'object-pinned', pin, 'da']))
  return { dev, pin }
}

/** Removes our filter from `dev` (the clsact qdisc stays: others may use it). A vanished device is not an error. */
export function detachIngress(netns: string | undefined, a: TcAttachment): void {
  run(tcCommand(netns, ['filter', 'del', 'dev', a.dev, 'ingress', 'prio', String(TC_PRIO), 'handle', String(TC_HANDLE), 'bpf']), /Cannot find device|No such file|not found|Invalid handle/i)
}
