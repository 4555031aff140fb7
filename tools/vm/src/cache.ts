import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The package directory (tools/vm), where fetch.sh and guest/ live. */
export const vmToolDir = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** What tools/vm/fetch.sh leaves in the cache: one unpacked Debian kernel and the initramfs built for it. */
export interface VmCache {
  dir: string
  kernelVersion: string
  kernel: string
  initramfs: string
  /** lib/modules/<version> of the unpacked kernel package (with busybox depmod's modules.dep). */
  modulesDir: string
}

/** The cache directory: $KMESH_VM_CACHE, else <repo>/.cache/vm. */
export function vmCacheDir(): string {
  return process.env.KMESH_VM_CACHE ?? join(vmToolDir, '..', '..', '.cache', 'vm')
}

/** The cache if it is complete, or a reason it is not (run tools/vm/fetch.sh). */
export function vmCache(dir = vmCacheDir()): VmCache | string {
  const currentFile = join(dir, 'current')
  if (!existsSync(currentFile)) return `no VM cache in ${dir} (run tools/vm/fetch.sh, or scripts/setup.sh)`
  const kernelVersion = readFileSync(currentFile, 'utf8').trim()
  const root = join(dir, `linux-${kernelVersion}`)
  const cache: VmCache = {
    dir,
    kernelVersion,
    kernel: join(root, 'boot', `vmlinuz-${kernelVersion}`),
    initramfs: join(dir, `initramfs-${kernelVersion}.cpio.gz`),
    modulesDir: join(root, 'lib', 'modules', kernelVersion),
  }
  for (const f of [cache.kernel, cache.initramfs, join(cache.modulesDir, 'modules.dep')]) {
    if (!existsSync(f)) return `VM cache ${dir} is incomplete: ${f} is missing (run tools/vm/fetch.sh)`
  }
  return cache
}
