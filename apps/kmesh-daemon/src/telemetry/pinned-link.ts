/**
 * A cgroup attachment through a bpf_link pinned at a path (the dataplane's pattern, dataplane.ts): a link a previous
 * daemon left on the same cgroup is switched to the new program with BPF_LINK_UPDATE (one atomic swap); a link
 * pinned for another cgroup is replaced (the new link attached first, then the old one dropped).
 */
import { existsSync } from 'node:fs'
import { BpfLink, cgroupId, linkInfo, type BpfProgram } from '@kmesh-ts/bpf-maps'

export function attachPinnedCgroupLink(
  program: BpfProgram,
  cgroupPath: string,
  pinPath: string,
): { link: BpfLink; tookOver: boolean } {
  const previous = existsSync(pinPath) ? BpfLink.openPinned(pinPath) : undefined
  if (previous && linkInfo(previous).cgroupId === cgroupId(cgroupPath)) {
    previous.update(program)
    return { link: previous, tookOver: true }
  }
  const link = program.attachCgroup(cgroupPath)
  if (previous) {
    previous.unpin()
    previous.detach()
    previous.close()
  }
  link.pin(pinPath)
  return { link, tookOver: false }
}

/** Detaches and unpins a link left at pinPath, if any (a daemon started with the feature off). */
export function removePinnedLink(pinPath: string): boolean {
  if (!existsSync(pinPath)) return false
  const link = BpfLink.openPinned(pinPath)
  link.unpin()
  link.detach()
  link.close()
  return true
}
