/**
 * The daemon's IPsec controller, local mode (issue 6 item 4): node info from a directory of KmeshNodeInfo-shaped
 * files, keys from Kmesh's key file. It publishes this node's info, and for every remote node keeps the XFRM states
 * and policies (planNodeRules, @kmesh-ts/ipsec) and the km_nodeinfo LPM entries (remote pod CIDRs) in step with the
 * files: re-derived on key rotation (a new SPI) and when a remote's boot id changes, removed when a remote's file
 * goes. `close()` removes everything it made: states, policies, map entries, tc filters and pins, and withdraws its
 * own node info when the source says so. Where node info comes from is a NodeInfoSource: a directory (local mode,
 * node-info-source.ts) or the KmeshNodeInfo custom resources (cluster mode, node-info-k8s.ts).
 */
import { mapNames } from '@kmesh-ts/kernel-abi'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Collection, lpmKey, lpmKeyOfCidr, u32Value, type TypedMap, type LpmKey } from '@kmesh-ts/bpf-maps'
import { objectPath, programs } from '@kmesh-ts/bpf-progs'
import { KMESH_REQID, watchKeyFile, XfrmClient, type KeyWatcher, type NodeInfo } from '@kmesh-ts/ipsec'
import { IPSEC_MARK_PEER, IPSEC_MARK_PEER_MASK } from '@kmesh-ts/kernel-abi'
import type { Logger } from '../log.js'
import { DirNodeInfoSource, type NodeInfoSource } from './node-info-source.js'
import { PeerIds } from './peer-ids.js'
import { desiredRules, describeStep, planSteps, type DesiredRules, type RuleSet, type Step } from './rules.js'
import { discoverNodeNics, discoverPodVeths } from './interfaces.js'
import { attachIngress, detachIngress, type TcAttachment } from './tc.js'

export interface IpsecControllerOptions {
  /** Kmesh's key file (`{"spi","aeadKeyName","aeadKey","length"}`), watched. */
  keyFile: string
  /** Directory of node-info files; this node's own is written there as `<name>.json`. Exactly one of nodeInfoDir and nodeInfoSource. */
  nodeInfoDir?: string | undefined
  /** Where node info comes from and goes to (e.g. KubernetesNodeInfoSource); the controller closes it. */
  nodeInfoSource?: NodeInfoSource | undefined
  /** This node. bootID defaults to /proc/sys/kernel/random/boot_id. */
  node: { name: string; addresses: string[]; podCIDRs: string[]; bootID?: string | undefined }
  /** Network namespace (e.g. /run/netns/NAME) whose XFRM tables and devices are managed; default the daemon's own. */
  netns?: string | undefined
  /** bpffs root; the LPM map and the tc programs are pinned under <pinRoot>/ipsec. */
  pinRoot: string
  /** Host-side veths of managed pods: tc_mark_encrypt on their ingress. */
  encryptDevices?: string[]
  /** Node NICs: tc_mark_decrypt on their ingress. */
  decryptDevices?: string[]
  /**
   * Find the node NICs (interfaces.ts: the devices carrying this node's addresses, and those of default routes) and
   * put tc_mark_decrypt on them too. The daemon turns it on when no decrypt device is configured.
   */
  discoverNics?: boolean | undefined
  /** Re-read everything this often even without a file event (missed events, clock of last resort). */
  resyncMs?: number
  /** Quiet time after a file event before reconciling. */
  debounceMs?: number
  /**
   * Beyond Kmesh (default true): IN/FWD policies that drop unmarked plaintext from remote nodes' pod CIDRs to ours
   * (planNodeRules' `rejectPlaintext`). `false` installs exactly Kmesh's rules.
   */
  rejectPlaintext?: boolean
  log: Logger
}

export const ipsecDefaults = { resyncMs: 5000, debounceMs: 100, rejectPlaintext: true } as const

export interface ReconcileResult {
  local: NodeInfo
  remotes: string[]
  applied: number
  failed: number
}

export class IpsecController {
  readonly #o: IpsecControllerOptions & { resyncMs: number; debounceMs: number; rejectPlaintext: boolean }
  readonly #keys: KeyWatcher
  readonly #xfrm: XfrmClient
  readonly #collection: Collection
  readonly #nodeInfo: TypedMap<LpmKey, number>
  readonly #peers: TypedMap<LpmKey, number>
  readonly #peerIds = new PeerIds()
  readonly #tc: TcAttachment[] = []
  /** tc_mark_encrypt attachments of enrolled pods, by pod network namespace path. */
  readonly #pods = new Map<string, TcAttachment[]>()
  #encryptPin = ''
  readonly #installed: RuleSet = { states: new Map(), policies: new Map(), cidrs: new Set(), peers: new Map() }
  readonly #bootID: string
  readonly #source: NodeInfoSource
  #published = ''
  #timer: NodeJS.Timeout | undefined
  #resync: NodeJS.Timeout | undefined
  #closed = false
  #sourceClosed: Promise<void> | undefined
  #last: DesiredRules | undefined

  private constructor(
    o: IpsecControllerOptions & { resyncMs: number; debounceMs: number; rejectPlaintext: boolean },
    source: NodeInfoSource,
    keys: KeyWatcher,
    xfrm: XfrmClient,
    collection: Collection,
  ) {
    this.#o = o
    this.#source = source
    this.#keys = keys
    this.#xfrm = xfrm
    this.#collection = collection
    this.#nodeInfo = collection.map(mapNames.nodeInfo).typed(lpmKey, u32Value) as TypedMap<LpmKey, number>
    this.#peers = collection.map(mapNames.ipsecPeer).typed(lpmKey, u32Value) as TypedMap<LpmKey, number>
    this.#bootID = o.node.bootID ?? readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  }

  /** Loads the key file, the tc object and the netlink socket, attaches tc, reconciles once, and starts watching. */
  static start(options: IpsecControllerOptions): IpsecController {
    const o = {
      ...ipsecDefaults,
      ...options,
      rejectPlaintext: options.rejectPlaintext ?? ipsecDefaults.rejectPlaintext,
    }
    for (const k of ['resyncMs', 'debounceMs'] as const) {
      if (!Number.isFinite(o[k]) || o[k] < 0)
        throw new RangeError(`IpsecController: option ${k} must be a non-negative number, got ${o[k]}`)
    }
    if (typeof o.rejectPlaintext !== 'boolean')
      throw new TypeError(
        `IpsecController: option rejectPlaintext must be a boolean, got ${JSON.stringify(o.rejectPlaintext)}`,
      )
    if ((o.nodeInfoDir === undefined) === (o.nodeInfoSource === undefined))
      throw new TypeError('IpsecController: give exactly one of the options nodeInfoDir and nodeInfoSource')
    const source = o.nodeInfoSource ?? new DirNodeInfoSource({ dir: o.nodeInfoDir!, nodeName: o.node.name, log: o.log })
    let controller: IpsecController | undefined
    const keys = watchKeyFile(o.keyFile, {
      debounceMs: o.debounceMs,
      onLoad: (key, history) => {
        o.log.info(
          { file: o.keyFile, spi: key.spi, algorithm: key.aeadKeyName, knownSpis: history.spis },
          'ipsec key loaded',
        )
        controller?.schedule()
      },
      onError: (err) =>
        o.log.error({ file: o.keyFile, err: err.message }, 'ipsec key file refused; the keys in force stay'),
      onWarning: (message) => o.log.warn({ file: o.keyFile }, message),
    })
    let xfrm: XfrmClient | undefined
    let collection: Collection | undefined
    try {
      xfrm = XfrmClient.open(o.netns === undefined ? {} : { netns: o.netns })
      collection = Collection.load({
        objectPath: objectPath('tc_mark'),
        pinRoot: join(o.pinRoot, 'ipsec'),
        reusePinned: false,
      })
      controller = new IpsecController(o, source, keys, xfrm, collection)
      controller.#removeLeftoverPeerStates()
      controller.#attachTc()
      o.log.info(
        { rejectPlaintext: o.rejectPlaintext },
        o.rejectPlaintext
          ? 'ipsec: unmarked plaintext from remote pods is dropped (kmesh-ts extension beyond Kmesh)'
          : 'ipsec: Kmesh rules only; plaintext from remote pods is delivered',
      )
      controller.reconcile()
      controller.#watch()
      return controller
    } catch (err) {
      if (controller) void controller.close()
      else {
        keys.close()
        xfrm?.close()
        collection?.close()
        void source.close()
      }
      throw err
    }
  }

  /** Re-reads the key file now (SIGHUP), as an edit of the file would; a bad file is refused and logged. */
  reloadKey(): void {
    if (!this.#closed) this.#keys.reload()
  }

  /**
   * An enrolled pod: tc_mark_encrypt on the host side of its veth(s), found from the pod's network namespace (a path
   * such as /proc/PID/ns/net). Returns the devices; none found is logged, not an error (a pod without a veth).
   */
  attachPod(podNetns: string): string[] {
    if (this.#closed) return []
    const devs = discoverPodVeths(this.#o.netns, podNetns)
    const list = devs.map((dev) => ({ dev, pin: this.#encryptPin }))
    this.detachPod(podNetns)
    if (!list.length) {
      this.#o.log.warn({ pod: podNetns }, 'ipsec: no host-side veth found for the pod; its traffic is not encrypted')
      return []
    }
    this.#pods.set(podNetns, list)
    this.#tc.push(...list)
    attachIngress(this.#o.netns, list)
    this.#o.log.info({ pod: podNetns, devs }, 'ipsec: tc_mark_encrypt attached to the pod veth')
    return devs
  }

  /** A pod that left: our filters off its veth(s) (a vanished device is fine). */
  detachPod(podNetns: string): void {
    const list = this.#pods.get(podNetns)
    if (!list) return
    this.#pods.delete(podNetns)
    for (const a of list) {
      const i = this.#tc.indexOf(a)
      if (i >= 0) this.#tc.splice(i, 1)
    }
    detachIngress(this.#o.netns, list)
  }

  /** Devices our tc programs are on now (admin, tests). */
  get tcAttachments(): readonly TcAttachment[] {
    return this.#tc
  }

  /** This node as published. */
  get local(): NodeInfo {
    return {
      name: this.#o.node.name,
      spi: this.#keys.current.spi,
      addresses: this.#o.node.addresses,
      bootID: this.#bootID,
      podCIDRs: this.#o.node.podCIDRs,
    }
  }

  /** What this controller has installed now. */
  get installed(): Readonly<RuleSet> {
    return this.#installed
  }

  /** The last desired set (egress decision and errors per remote). */
  get lastPlan(): DesiredRules | undefined {
    return this.#last
  }

  /** Reconciles after the debounce (file events, key reloads). */
  schedule(): void {
    if (this.#closed) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.#reconcileLogged(), this.#o.debounceMs)
  }

  /** Where node info comes from (`dir …`, `kubernetes …`). */
  get nodeInfoSource(): NodeInfoSource {
    return this.#source
  }

  /** Publishes this node's info and brings XFRM and km_nodeinfo in line with the node info of the source. Synchronous. */
  reconcile(): ReconcileResult {
    const { log } = this.#o
    const local = this.local
    const doc = JSON.stringify(local)
    if (doc !== this.#published) {
      this.#source.publish(local)
      this.#published = doc
      log.info(
        {
          node: local.name,
          spi: local.spi,
          addresses: local.addresses,
          podCIDRs: local.podCIDRs,
          source: this.#source.description,
        },
        'ipsec node info published',
      )
    }
    const nodes = this.#source.nodes()
    const remotes = [...nodes.values()].filter((n) => n.name !== local.name)
    const { ids: peerIds } = this.#peerIds.assign(remotes.map((r) => r.name))
    const desired = desiredRules(local, remotes, this.#keys.history, {
      rejectPlaintext: this.#o.rejectPlaintext,
      peerIds,
    })
    for (const [node, why] of desired.errors) log.error({ node }, `ipsec: cannot plan rules for node ${node}: ${why}`)
    for (const [node, egress] of desired.egress) {
      if (egress !== 'planned' && this.#last?.egress.get(node) !== egress)
        log.warn({ node, egress }, 'ipsec: no egress to this node yet')
    }
    this.#last = desired
    let applied = 0
    let failed = 0
    for (const step of planSteps(this.#installed, desired)) {
      try {
        this.#apply(step)
        applied++
        log.debug(describeStep(step), 'ipsec rule applied')
      } catch (err) {
        failed++
        log.error(
          { ...describeStep(step), err: (err as Error).message },
          'ipsec rule failed; retried at the next reconcile',
        )
      }
    }
    if (applied || failed)
      log.info(
        {
          remotes: remotes.map((r) => r.name),
          applied,
          failed,
          states: this.#installed.states.size,
          policies: this.#installed.policies.size,
          cidrs: this.#installed.cidrs.size,
          peers: this.#installed.peers?.size ?? 0,
        },
        'ipsec reconciled',
      )
    return { local, remotes: remotes.map((r) => r.name), applied, failed }
  }

  /**
   * Removes everything this controller made (rules, map entries, tc filters, pins) at once, then closes the node-info
   * source, which withdraws this node's info if it was told to (the directory source does by default, the Kubernetes
   * source does not). The returned promise settles when the source is closed; it never rejects.
   */
  close(): Promise<void> {
    if (this.#closed) return this.#sourceClosed ?? Promise.resolve()
    this.#closed = true
    clearTimeout(this.#timer)
    clearInterval(this.#resync)
    this.#keys.close()
    const { log, netns } = this.#o
    const nothing: RuleSet = { states: new Map(), policies: new Map(), cidrs: new Set(), peers: new Map() }
    for (const step of planSteps(this.#installed, nothing)) {
      try {
        this.#apply(step)
      } catch (err) {
        log.error({ ...describeStep(step), err: (err as Error).message }, 'ipsec: could not remove a rule at shutdown')
      }
    }
    const attached = this.#tc.splice(0)
    try {
      detachIngress(netns, attached)
    } catch (err) {
      log.error({ devs: attached.map((a) => a.dev), err: (err as Error).message }, 'ipsec: could not detach tc')
    }
    this.#xfrm.close()
    this.#collection.close()
    rmSync(join(this.#o.pinRoot, 'ipsec'), { recursive: true, force: true })
    log.info({ node: this.#o.node.name }, 'ipsec stopped; every rule it made is removed')
    this.#sourceClosed = this.#source
      .close()
      .catch((err: unknown) =>
        log.error(
          { err: (err as Error).message, source: this.#source.description },
          'ipsec: closing the node-info source failed',
        ),
      )
    return this.#sourceClosed
  }

  [Symbol.dispose](): void {
    void this.close()
  }

  #apply(step: Step): void {
    const set = this.#installed
    switch (step.op) {
      case 'delete-cidr':
        this.#nodeInfo.delete(lpmKeyOfCidr(step.cidr))
        set.cidrs.delete(step.cidr)
        return
      case 'add-cidr':
        this.#nodeInfo.put(lpmKeyOfCidr(step.cidr), 1)
        set.cidrs.add(step.cidr)
        return
      case 'delete-peer':
        this.#peers.delete(peerKey(step.address))
        set.peers?.delete(step.address)
        return
      case 'put-peer':
        this.#peers.put(peerKey(step.address), step.mark)
        set.peers?.set(step.address, step.mark)
        return
      case 'delete-policy':
        deleteIgnoringMissing(() => this.#xfrm.deletePolicy(step.id))
        set.policies.delete(step.key)
        return
      case 'update-policy':
        this.#xfrm.updatePolicy(step.policy)
        set.policies.set(step.key, step.policy)
        return
      case 'delete-state':
        deleteIgnoringMissing(() => this.#xfrm.deleteState(step.id))
        set.states.delete(step.key)
        return
      case 'add-state':
        try {
          this.#xfrm.addState(step.state)
        } catch (err) {
          // A leftover SA with this identity (an earlier run that did not shut down): replace it.
          if ((err as { code?: string }).code !== 'EEXIST') throw err
          this.#xfrm.deleteState(step.state)
          this.#xfrm.addState(step.state)
        }
        set.states.set(step.key, step.state)
        return
    }
  }

  /**
   * Per-peer IN states an earlier run left behind (it did not shut down): peer ids are this process's own, so a
   * leftover would never collide with a new state (EEXIST) and could linger with a stale key. Ours are recognisable:
   * reqid 1 and a mark of the peer form under the peer mask.
   */
  #removeLeftoverPeerStates(): void {
    for (const s of this.#xfrm.dumpStates()) {
      const m = s.mark
      if (s.reqid !== KMESH_REQID || !m || m.mask !== IPSEC_MARK_PEER_MASK) continue
      if ((m.value & 0xff) >>> 0 !== IPSEC_MARK_PEER) continue
      deleteIgnoringMissing(() => this.#xfrm.deleteState(s))
      this.#o.log.info(
        { rule: `${s.src} -> ${s.dst} spi ${s.spi}` },
        'ipsec: removed a peer state left by an earlier run',
      )
    }
  }

  #attachTc(): void {
    const pins = join(this.#o.pinRoot, 'ipsec', 'progs')
    mkdirSync(pins, { recursive: true })
    const pin = (name: string): string => {
      const path = join(pins, name)
      rmSync(path, { force: true })
      this.#collection.program(name).pin(path)
      return path
    }
    const enc = pin(programs.tcMarkEncrypt.name)
    const dec = pin(programs.tcMarkDecrypt.name)
    this.#encryptPin = enc
    const decrypt = [...(this.#o.decryptDevices ?? [])]
    if (this.#o.discoverNics) {
      const found = discoverNodeNics(this.#o.netns, this.#o.node.addresses)
      this.#o.log.info(
        { byAddress: found.byAddress, byDefaultRoute: found.byDefaultRoute, netns: this.#o.netns },
        'ipsec: node NICs discovered for tc_mark_decrypt',
      )
      if (!found.all.length)
        this.#o.log.warn(
          { addresses: this.#o.node.addresses, netns: this.#o.netns },
          "ipsec: no NIC carries this node's addresses and there is no default route: inbound ESP gets no peer mark",
        )
      for (const dev of found.all) if (!decrypt.includes(dev)) decrypt.push(dev)
    }
    const wanted = [
      ...(this.#o.encryptDevices ?? []).map((dev) => ({ dev, pin: enc })),
      ...decrypt.map((dev) => ({ dev, pin: dec })),
    ]
    // Recorded first: if the batch fails halfway, close() still detaches what did attach (a missing filter is fine).
    this.#tc.push(...wanted)
    attachIngress(this.#o.netns, wanted)
    if (this.#tc.length)
      this.#o.log.info(
        { encrypt: this.#o.encryptDevices ?? [], decrypt, netns: this.#o.netns },
        'ipsec tc programs attached',
      )
  }

  #watch(): void {
    this.#source.start(() => this.schedule())
    if (this.#o.resyncMs > 0) {
      this.#resync = setInterval(() => this.#reconcileLogged(), this.#o.resyncMs)
      this.#resync.unref()
    }
  }

  #reconcileLogged(): void {
    if (this.#closed) return
    try {
      this.reconcile()
    } catch (err) {
      this.#o.log.error({ err: (err as Error).message }, 'ipsec reconcile failed')
    }
  }
}

/** km_ipsec_peer key: `struct lpm_key` with the full prefix length of the address's family (32 or 128). */
function peerKey(address: string): LpmKey {
  return { prefixLen: address.includes(':') ? 128 : 32, address }
}

function deleteIgnoringMissing(fn: () => void): void {
  try {
    fn()
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code !== 'ENOENT' && code !== 'ESRCH') throw err
  }
}
