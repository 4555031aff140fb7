import { watch, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import { KeyFileError } from './errors.js'
import { KeyHistory } from './key-history.js'
import { readKeyFile, type IpsecKey } from './keyfile.js'

export interface KeyWatcherOptions {
  /** Quiet time after the last file-system event before the file is read again. */
  debounceMs?: number
  /** Aborting closes the watcher. */
  signal?: AbortSignal
  /** A key was loaded (the first load included); `history.current` is that key. */
  onLoad?: (key: IpsecKey, history: KeyHistory) => void
  /** A reload failed; the previous keys stay in force. */
  onError?: (error: KeyFileError) => void
  /** Operator-facing warnings, e.g. a key file readable by others. Never contains key material. */
  onWarning?: (message: string) => void
}

const defaults = { debounceMs: 100 } as const

export interface KeyWatcher {
  readonly path: string
  readonly history: KeyHistory
  /** The key loaded last. */
  readonly current: IpsecKey
  /** Reads the file now (as a file-system event would, without the debounce). */
  reload(): void
  close(): void
  [Symbol.dispose](): void
}

/**
 * Loads the key file and keeps reloading it when it changes, recording every key by SPI.
 * The first load must succeed (it throws KeyFileError otherwise); later failures go to `onError`.
 *
 * The watch is on the file's directory, not the file: a Kubernetes secret volume replaces the file through an
 * atomic rename of its `..data` symlink, which a watch on the file itself would not survive. Each event is
 * debounced and the file re-read; an unchanged key is not reported again.
 */
export function watchKeyFile(path: string, options: KeyWatcherOptions = {}): KeyWatcher {
  const debounceMs = options.debounceMs ?? defaults.debounceMs
  if (!Number.isFinite(debounceMs) || debounceMs < 0)
    throw new RangeError(`watchKeyFile: option debounceMs must be a non-negative number, got ${debounceMs}`)
  const history = new KeyHistory()
  const load = (): void => {
    const key = readKeyFile(path, { onWarning: options.onWarning })
    const known = history.get(key.spi)
    if (history.current && known && known.equals(key) && history.current.spi === key.spi) return
    history.add(key)
    options.onLoad?.(key, history)
  }
  load()

  let timer: NodeJS.Timeout | undefined
  let closed = false
  const reload = (): void => {
    if (closed) return
    try {
      load()
    } catch (err) {
      options.onError?.(
        err instanceof KeyFileError ? err : new KeyFileError(path, undefined, String(err), { cause: err }),
      )
    }
  }
  const name = basename(path)
  const fsWatcher: FSWatcher = watch(dirname(path), (_event, file) => {
    // A secret volume swaps `..data`; a plain file is written in place or renamed over. Anything else in the
    // directory is not ours.
    if (file !== null && file !== name && !file.startsWith('..')) return
    clearTimeout(timer)
    timer = setTimeout(reload, debounceMs)
  })
  fsWatcher.on('error', (err) =>
    options.onError?.(
      new KeyFileError(path, undefined, `watch failed (${(err as NodeJS.ErrnoException).code ?? err.message})`, {
        cause: err,
      }),
    ),
  )

  const close = (): void => {
    if (closed) return
    closed = true
    clearTimeout(timer)
    fsWatcher.close()
    options.signal?.removeEventListener('abort', close)
  }
  if (options.signal?.aborted) close()
  else options.signal?.addEventListener('abort', close, { once: true })

  return {
    path,
    history,
    get current() {
      return history.current!
    },
    reload,
    close,
    [Symbol.dispose]: close,
  }
}
