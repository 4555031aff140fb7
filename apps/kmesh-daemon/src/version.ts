/** The version of this package (package.json ships beside dist/ and src/). */
import { readFileSync } from 'node:fs'

export function packageVersion(): { name: string; version: string } {
  return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    name: string
    version: string
  }
}

/** `@kmesh-ts/kmesh-daemon 0.1.0` */
export function version(): string {
  const pkg = packageVersion()
  return `${pkg.name} ${pkg.version}`
}

/** What /version answers: the package, the runtime and the platform (Kmesh's /version lists the same kind). */
export function versionInfo(): Record<string, unknown> {
  const pkg = packageVersion()
  return {
    name: pkg.name,
    version: pkg.version,
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform}/${process.arch}`,
    pid: process.pid,
    startedAt: new Date(Date.now() - process.uptime() * 1000).toISOString(),
  }
}
