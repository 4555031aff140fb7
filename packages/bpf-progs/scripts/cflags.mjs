// The clang flags of every BPF compile in this package (the build, the constants generator and the tests that
// compile against include/), kept in one place so they all see the same headers and macros.
// Environment: CLANG (default "clang"), BPF_EXTRA_CFLAGS (space-separated, appended).
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const pkg = join(dirname(fileURLToPath(import.meta.url)), '..')
export const includeDir = join(pkg, 'include')
export const clang = process.env.CLANG ?? 'clang'

/** Debian keeps asm/*.h under the multiarch directory; clang -target bpf does not look there by itself. */
const multiarch = {
  x64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  ppc64: 'powerpc64le-linux-gnu',
  s390x: 's390x-linux-gnu',
}[process.arch]

export const cflags = [
  '-target',
  'bpf',
  '-O2',
  '-g',
  '-Wall',
  '-Werror',
  ...(multiarch ? [`-I/usr/include/${multiarch}`] : []),
  `-I${includeDir}`,
  // Reproducible objects: DWARF and BTF (file names of the line info, include directories, comp_dir) name files
  // relative to the package ("src/cgroup_sock.c", "include"), never the checkout path, so two builds from two
  // different checkouts are byte-identical (test/reproducible.test.ts). -ffile-prefix-map also covers __FILE__.
  // System headers (/usr/include/...) keep their absolute paths: they do not depend on the checkout.
  `-ffile-prefix-map=${pkg}/=`,
  '-fdebug-compilation-dir=.',
  ...(process.env.BPF_EXTRA_CFLAGS?.split(' ').filter(Boolean) ?? []),
]

/** Why running clang failed, for a one-line error. */
export function clangFailure(err) {
  return err.code === 'ENOENT' ? `${clang} not found (install clang, or set CLANG)` : `exit ${err.status ?? err.signal}`
}
