/**
 * Node mode installs the kmesh-cni plugin (src/cni/install.ts): the binary into the node's CNI bin dir and our
 * entry chained at the end of the primary network configuration. The primary plugin may not have written its
 * configuration yet when the daemon starts (a new node): then the install is retried until it has. On a plain stop
 * (an uninstall: not --keep-pinned, which is how an upgrade stops) both are removed again; an upgrade leaves them,
 * so pods created meanwhile still reach the next daemon's socket (and the reconciler catches those it missed).
 */
import { CniConfigError, installCni, uninstallCni, type CniInstallResult } from '../cni/index.js'
import type { Logger } from '../log.js'

export interface CniInstallSettings {
  binDir: string
  confDir: string
  socketPath: string
  /** The binary to install (default: this package's bin/kmesh-cni). */
  pluginBinary?: string | undefined
  /** How often a missing network configuration is looked for again (default 5 s). */
  retryMs?: number | undefined
  log: Logger
}

export interface CniInstallHandle {
  status(): {
    installed: boolean
    confFile?: string | undefined
    binary?: string | undefined
    waiting?: string | undefined
  }
  /** Stops retrying; with uninstall, removes our entry from every configuration and the binary. */
  close(options: { uninstall: boolean }): void
}

export function startCniInstall(s: CniInstallSettings): CniInstallHandle {
  let installed: CniInstallResult | undefined
  let waiting: string | undefined
  let timer: NodeJS.Timeout | undefined
  let closed = false
  const attempt = (): void => {
    timer = undefined
    if (closed) return
    try {
      installed = installCni({
        binDir: s.binDir,
        confDir: s.confDir,
        socketPath: s.socketPath,
        pluginBinary: s.pluginBinary,
      })
      waiting = undefined
      s.log.info(
        {
          confFile: installed.confFile,
          binary: installed.binary,
          changed: installed.changed,
          convertedFrom: installed.convertedFrom,
        },
        installed.changed ? 'kmesh-cni chained into the network configuration' : 'kmesh-cni already chained',
      )
    } catch (err) {
      if (!(err instanceof CniConfigError)) throw err
      const first = waiting === undefined
      waiting = err.message
      if (first) s.log.warn({ err: err.message, retryMs: s.retryMs ?? 5000 }, 'kmesh-cni not installed yet; retrying')
      timer = setTimeout(attempt, s.retryMs ?? 5000)
      timer.unref()
    }
  }
  attempt()
  return {
    status: () => ({
      installed: installed !== undefined,
      confFile: installed?.confFile,
      binary: installed?.binary,
      waiting,
    }),
    close: ({ uninstall }) => {
      closed = true
      if (timer) clearTimeout(timer)
      if (!uninstall) return
      const r = uninstallCni({ binDir: s.binDir, confDir: s.confDir })
      s.log.info(
        { patched: r.patched, binaryRemoved: r.binaryRemoved },
        'kmesh-cni removed from the network configuration',
      )
    },
  }
}
