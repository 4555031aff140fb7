/**
 * Where the IPsec controller gets every node's info from and where it publishes its own: a directory of
 * KmeshNodeInfo-shaped files (local mode, this file) or the KmeshNodeInfo custom resources of the Kubernetes API
 * (cluster mode, node-info-k8s.ts). The controller only sees this interface.
 */
import { existsSync, mkdirSync, watch, type FSWatcher } from 'node:fs'
import type { NodeInfo } from '@kmesh-ts/ipsec/pure'
import type { Logger } from '../log.js'
import { readNodeInfoDir, removeNodeInfo, writeNodeInfo } from './node-info.js'

export interface NodeInfoSource {
  /** For log lines: `dir /var/run/kmesh/nodeinfo`, `kubernetes kmesh-system/kmeshnodeinfos`. */
  readonly description: string
  /** Starts watching; `onChange` is called (debounced by the controller) whenever the set of nodes may have changed. */
  start(onChange: () => void): void
  /**
   * Every node known now, this one included once published. Synchronous, because the controller's reconcile is:
   * a remote source answers from its cache. Broken entries are reported by the source and left out.
   */
  nodes(): ReadonlyMap<string, NodeInfo>
  /** Publishes this node's info. The latest call wins; a source that writes remotely retries in the background. */
  publish(info: NodeInfo): void
  /** Stops watching and publishing; withdraws this node's info when the source was told to (see each source). Never rejects. */
  close(): Promise<void>
}

export interface DirNodeInfoSourceOptions {
  dir: string
  /** This node's name: its file is `<dir>/<name>.json`. */
  nodeName: string
  /**
   * Remove this node's file on close (default true): in local mode the files live on one machine, and a stopped
   * node's rules should go with it.
   */
  withdrawOnClose?: boolean
  log: Logger
}

/** Local mode: node info in `<dir>/*.json`, watched with fs.watch. */
export class DirNodeInfoSource implements NodeInfoSource {
  readonly description: string
  readonly #o: DirNodeInfoSourceOptions
  #watcher: FSWatcher | undefined

  constructor(options: DirNodeInfoSourceOptions) {
    this.#o = options
    this.description = `dir ${options.dir}`
    if (!existsSync(options.dir)) mkdirSync(options.dir, { recursive: true })
  }

  start(onChange: () => void): void {
    this.#watcher = watch(this.#o.dir, () => onChange())
    this.#watcher.on('error', (err) =>
      this.#o.log.error(
        { dir: this.#o.dir, err: err.message },
        'ipsec: node-info directory watch failed; resync continues',
      ),
    )
  }

  nodes(): ReadonlyMap<string, NodeInfo> {
    return readNodeInfoDir(this.#o.dir, (err) => this.#o.log.error({ file: err.file, key: err.key }, err.message))
  }

  publish(info: NodeInfo): void {
    writeNodeInfo(this.#o.dir, info)
  }

  async close(): Promise<void> {
    this.#watcher?.close()
    this.#watcher = undefined
    if (this.#o.withdrawOnClose ?? true) removeNodeInfo(this.#o.dir, this.#o.nodeName)
  }
}
