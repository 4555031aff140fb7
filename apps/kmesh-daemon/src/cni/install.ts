/**
 * Installs kmesh-cni on a node: the plugin binary into the CNI bin dir, and our entry at the end of the plugin
 * chain of the node's primary network configuration. Every write is a temporary file in the same directory,
 * fsync-ed, then renamed over the target, so a container runtime reading the directory at any instant sees either
 * the old or the new file, never a partial one. Temporary names end in ".tmp", an extension runtimes ignore.
 *
 * Order: the binary before the configuration on install, the configuration before the binary on uninstall, so the
 * runtime never finds kmesh-cni in a chain without its binary.
 */
import {
  closeSync,
  existsSync,
  fchmodSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs'
import { basename, extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const CNI_PLUGIN_TYPE = 'kmesh-cni'
export const DEFAULT_CNI_SOCKET = '/var/run/kmesh-ts/cni.sock'
/** The extensions libcni (and so containerd and CRI-O) reads network configurations from. */
export const CNI_CONFIG_EXTENSIONS = ['.conf', '.conflist', '.json'] as const

/** The binary built by scripts/build-cni.mjs (bin/ of this package, from src/cni/ or dist/cni/ alike). */
export function defaultPluginBinary(): string {
  return fileURLToPath(new URL('../../bin/kmesh-cni', import.meta.url))
}

export interface CniInstallOptions {
  /** Where the runtime looks for plugin binaries (CNI_PATH), e.g. /opt/cni/bin. */
  binDir: string
  /** Where the runtime reads network configurations, e.g. /etc/cni/net.d. */
  confDir: string
  /** The daemon's CNI socket, written into our entry as kmeshSocket (default DEFAULT_CNI_SOCKET). */
  socketPath?: string
  /** The plugin binary to install (default defaultPluginBinary()). */
  pluginBinary?: string
  /** A file name in confDir to patch instead of the primary one (as istio-cni's CNI_CONF_NAME). */
  confFile?: string
}

export interface CniInstallResult {
  /** The installed binary. */
  binary: string
  /** The configuration that now chains kmesh-cni. */
  confFile: string
  /** False when the file already held exactly our entry, last: nothing was written. */
  changed: boolean
  /** A single-plugin .conf/.json converted to confFile and removed. */
  convertedFrom?: string
}

export interface CniUninstallResult {
  /** Files our entry was removed from. */
  patched: string[]
  binaryRemoved: boolean
}

/** A network configuration we cannot work with; `file` names it. */
export class CniConfigError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`)
    this.name = 'CniConfigError'
  }
}

type Json = Record<string, unknown>

/** The configuration files of confDir in the order the runtime considers them (byte order of names). */
export function cniConfigFiles(confDir: string): string[] {
  let names: string[]
  try {
    names = readdirSync(confDir)
  } catch (e) {
    throw new CniConfigError(confDir, `cannot read the CNI configuration directory: ${(e as Error).message}`)
  }
  return names
    .filter((n) => (CNI_CONFIG_EXTENSIONS as readonly string[]).includes(extname(n)))
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map((n) => join(confDir, n))
}

/**
 * The primary network configuration: the first file in name order, which is the one the runtime uses. We refuse
 * a broken first file rather than skip to the next (as the runtime would): patching a file the operator does not
 * expect to be in force would hide the problem.
 */
export function primaryConfigFile(confDir: string): string {
  const first = cniConfigFiles(confDir)[0]
  if (!first)
    throw new CniConfigError(
      confDir,
      `no network configuration (${CNI_CONFIG_EXTENSIONS.join(', ')}) yet: the node's primary CNI plugin has not written one`,
    )
  return first
}

/** Installs the binary, then chains our entry into the primary configuration. Idempotent. */
export function installCni(options: CniInstallOptions): CniInstallResult {
  const socketPath = options.socketPath ?? DEFAULT_CNI_SOCKET
  const binary = installBinary(options.pluginBinary ?? defaultPluginBinary(), options.binDir)
  const file = options.confFile ? join(options.confDir, options.confFile) : primaryConfigFile(options.confDir)
  const config = readConfig(file)
  const entry = { type: CNI_PLUGIN_TYPE, kmeshSocket: socketPath }

  if (!('plugins' in config)) {
    // A single-plugin file. istio-cni wraps it into a list (the plugin without its cniVersion, then istio-cni),
    // writes the list into the .conf and renames that to .conflist. Between the write and the rename the .conf
    // holds a list, which the runtime cannot read as a .conf; we write the .conflist first and then remove the
    // original, so one of the two valid files is always in force. We keep the network's name and cniVersion.
    const { cniVersion, ...plugin } = config
    if (typeof cniVersion !== 'string' || typeof config.name !== 'string')
      throw new CniConfigError(file, 'a single-plugin configuration needs "cniVersion" and "name" to become a list')
    const target = file.slice(0, -extname(file).length) + '.conflist'
    if (existsSync(target)) throw new CniConfigError(file, `converting it would overwrite ${target}, which exists`)
    const list = { cniVersion, name: config.name, plugins: [plugin, entry] }
    writeAtomically(target, list, modeOf(file))
    rmSync(file)
    fsyncDir(options.confDir)
    return { binary, confFile: target, changed: true, convertedFrom: file }
  }
  const plugins = config.plugins as Json[]
  const ours = plugins.filter(isOurs)
  const last = plugins[plugins.length - 1]
  if (ours.length === 1 && last && isOurs(last) && sameEntry(last, entry))
    return { binary, confFile: file, changed: false }
  writeAtomically(file, { ...config, plugins: [...plugins.filter((p) => !isOurs(p)), entry] }, modeOf(file))
  return { binary, confFile: file, changed: true }
}

/**
 * Removes our entry from every configuration in confDir that holds one (the primary file may have changed since
 * the install), then the binary. A converted .conf stays a one-plugin .conflist, which the runtime reads the same.
 */
export function uninstallCni(options: Pick<CniInstallOptions, 'binDir' | 'confDir'>): CniUninstallResult {
  const patched: string[] = []
  for (const file of cniConfigFiles(options.confDir)) {
    let config: Json
    try {
      config = readConfig(file)
    } catch {
      continue // not ours to judge: a file we cannot read holds no entry we could have written
    }
    if (!Array.isArray(config.plugins) || !config.plugins.some(isOurs)) continue
    writeAtomically(file, { ...config, plugins: (config.plugins as Json[]).filter((p) => !isOurs(p)) }, modeOf(file))
    patched.push(file)
  }
  const binary = join(options.binDir, CNI_PLUGIN_TYPE)
  let binaryRemoved = false
  try {
    rmSync(binary)
    binaryRemoved = true
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`removing ${binary}: ${(e as Error).message}`)
  }
  return { patched, binaryRemoved }
}

/** Parses and checks one configuration file: a list (plugins: objects with a type) or a single plugin (type). */
export function readConfig(file: string): Json {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new CniConfigError(file, `cannot read: ${(e as Error).message}`)
  }
  let config: unknown
  try {
    config = JSON.parse(text)
  } catch (e) {
    throw new CniConfigError(file, `not valid JSON: ${(e as Error).message}`)
  }
  if (!config || typeof config !== 'object' || Array.isArray(config))
    throw new CniConfigError(file, 'not a JSON object')
  const c = config as Json
  if ('plugins' in c) {
    if (!Array.isArray(c.plugins)) throw new CniConfigError(file, '"plugins" is not an array')
    c.plugins.forEach((p: unknown, i) => {
      if (!p || typeof p !== 'object' || typeof (p as Json).type !== 'string')
        throw new CniConfigError(file, `plugins[${i}] is not an object with a "type" string`)
    })
    return c
  }
  if (typeof c.type !== 'string')
    throw new CniConfigError(file, 'neither a network configuration list ("plugins") nor a single plugin ("type")')
  return c
}

function isOurs(plugin: Json): boolean {
  return plugin.type === CNI_PLUGIN_TYPE
}

function sameEntry(a: Json, b: Json): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

function modeOf(file: string): number {
  return statSync(file).mode & 0o777
}

let serial = 0
function tempNameFor(target: string): string {
  return join(target, '..', `.${basename(target)}.${process.pid}.${++serial}.tmp`)
}

/** Writes `data` to a temporary file next to `target`, fsyncs it, renames it over `target`, fsyncs the directory. */
function writeAtomically(target: string, data: Json | Buffer, mode: number): void {
  const temp = tempNameFor(target)
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(`${JSON.stringify(data, null, 2)}\n`)
  try {
    const fd = openSync(temp, 'wx', mode)
    try {
      fchmodSync(fd, mode) // exactly the target's mode, whatever the umask
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(temp, target)
  } catch (e) {
    rmSync(temp, { force: true })
    throw new Error(`writing ${target}: ${(e as Error).message}`)
  }
  fsyncDir(join(target, '..'))
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** Copies the plugin binary into binDir (unless the same bytes are there), executable, by temp file and rename. */
function installBinary(source: string, binDir: string): string {
  let bytes: Buffer
  try {
    bytes = readFileSync(source)
  } catch (e) {
    throw new Error(
      `the plugin binary ${source} is missing (${(e as NodeJS.ErrnoException).code}): build it with ` +
        '`pnpm --filter @kmesh-ts/kmesh-daemon build` (scripts/build-cni.mjs)',
    )
  }
  const target = join(binDir, CNI_PLUGIN_TYPE)
  try {
    if (readFileSync(target).equals(bytes)) return target
  } catch {
    /* not installed yet */
  }
  writeAtomically(target, bytes, 0o755)
  return target
}
