/**
 * The kernel side of authorization: xdp_authz.o loaded with its maps pinned beside the connect maps
 * (<pinRoot>/maps), the program pinned at <pinRoot>/progs/xdp_authz, and attached to the interfaces of the network
 * namespaces the daemon manages — never to the host's: a namespace that is the daemon's own (or init's) is refused.
 *
 * Attachment goes through iproute2 inside the namespace (`nsenter --net=… ip -force link set dev IF xdpgeneric
 * pinned …`): an interface index means something only inside its namespace, and a Node process cannot move one
 * thread into another namespace. Detached on stop, and when a namespace is unmanaged.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { AuthzMaps } from '@kmesh-ts/authz-compiler/kernel'
import { Collection } from '@kmesh-ts/bpf-maps'
import { objectPath, programs } from '@kmesh-ts/bpf-progs'
import type { Logger } from '../log.js'

/**
 * How the program is attached. `generic` (the default) runs it on the kernel's socket buffer: a RST sent with
 * XDP_TX leaves through the interface's normal transmit path and reaches the client whatever the peer is. `native`
 * runs it in the driver (cheaper per packet), but on a veth an XDP_TX frame is delivered only when the peer has
 * NAPI (an XDP program of its own, or GRO requested on it): otherwise the RST is lost and a denied client waits
 * for its SYN timeout instead — still denied. docs/authz-kernel.md.
 */
export type XdpMode = 'generic' | 'native'

export interface AuthzDataplaneOptions {
  pinRoot: string
  mode?: XdpMode | undefined
  log: Logger
}

export interface AttachedInterface {
  netns: string
  ifname: string
  /** the mode the kernel chose: xdp (native), xdpgeneric */
  mode: string
}

function nsExec(netnsPath: string, args: string[]): string {
  return execFileSync('nsenter', [`--net=${netnsPath}`, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

/** The network namespaces that are the host's: this process's own and init's. */
function isHostNetns(netnsPath: string): boolean {
  const ino = (p: string) => {
    try {
      return statSync(p).ino
    } catch {
      return undefined
    }
  }
  const target = ino(netnsPath)
  return target !== undefined && (target === ino('/proc/self/ns/net') || target === ino('/proc/1/ns/net'))
}

export class AuthzDataplane {
  readonly maps: AuthzMaps
  private readonly attached: AttachedInterface[] = []
  private readonly programPin: string

  private constructor(
    private readonly collection: Collection,
    private readonly options: AuthzDataplaneOptions,
  ) {
    this.maps = AuthzMaps.fromCollection(collection)
    this.programPin = join(options.pinRoot, 'progs', programs.xdpAuthz.name)
  }

  static start(options: AuthzDataplaneOptions): AuthzDataplane {
    const collection = Collection.load({
      objectPath: objectPath('xdp_authz'),
      pinRoot: options.pinRoot,
      reusePinned: true,
    })
    const dp = new AuthzDataplane(collection, options)
    try {
      mkdirSync(join(options.pinRoot, 'progs'), { recursive: true })
      rmSync(dp.programPin, { force: true })
      collection.program(programs.xdpAuthz.name).pin(dp.programPin)
      dp.maps.resetSlot(0)
    } catch (err) {
      dp.close()
      throw err
    }
    return dp
  }

  /** Attaches xdp_authz to every interface of the namespace but loopback. */
  attachNetns(netnsPath: string): AttachedInterface[] {
    if (isHostNetns(netnsPath)) {
      throw new Error(`refusing to attach XDP in ${netnsPath}: it is the host's network namespace`)
    }
    // Attaching again (a re-enrolment) replaces the program in place (-force): forget the old records first.
    for (let i = this.attached.length - 1; i >= 0; i--)
      if (this.attached[i]?.netns === netnsPath) this.attached.splice(i, 1)
    const links = JSON.parse(nsExec(netnsPath, ['ip', '-j', 'link', 'show'])) as Array<{
      ifname: string
      flags?: string[]
    }>
    const done: AttachedInterface[] = []
    for (const { ifname, flags } of links) {
      if (flags?.includes('LOOPBACK')) continue
      nsExec(netnsPath, [
        'ip',
        '-force',
        'link',
        'set',
        'dev',
        ifname,
        this.options.mode === 'native' ? 'xdpdrv' : 'xdpgeneric',
        'pinned',
        this.programPin,
      ])
      const info = JSON.parse(nsExec(netnsPath, ['ip', '-j', '-d', 'link', 'show', 'dev', ifname])) as Array<{
        xdp?: { mode?: number; prog?: { name?: string } }
      }>
      const mode = ['none', 'xdp', 'xdpgeneric', 'xdpoffload', 'xdpmulti'][info[0]?.xdp?.mode ?? 0] ?? 'unknown'
      const a = { netns: netnsPath, ifname, mode }
      this.attached.push(a)
      done.push(a)
    }
    this.options.log.info(
      { netns: netnsPath, interfaces: done.map((d) => `${d.ifname} (${d.mode})`) },
      'authorization attached (XDP)',
    )
    return done
  }

  /** Detaches from every interface of the namespace it was attached to; a namespace already gone is fine. */
  detachNetns(netnsPath: string): void {
    for (let i = this.attached.length - 1; i >= 0; i--) {
      const a = this.attached[i] as AttachedInterface
      if (a.netns !== netnsPath) continue
      this.attached.splice(i, 1)
      if (!existsSync(netnsPath)) continue
      try {
        nsExec(netnsPath, ['ip', 'link', 'set', 'dev', a.ifname, 'xdp', 'off'])
      } catch (err) {
        this.options.log.warn(
          { netns: netnsPath, ifname: a.ifname, err: (err as Error).message },
          'detaching XDP failed',
        )
      }
    }
  }

  attachments(): AttachedInterface[] {
    return [...this.attached]
  }

  close(): void {
    for (const netns of new Set(this.attached.map((a) => a.netns))) this.detachNetns(netns)
    rmSync(this.programPin, { force: true })
    const progs = join(this.options.pinRoot, 'progs')
    if (existsSync(progs) && readdirSync(progs).length === 0) rmdirSync(progs)
    this.collection.unpinMaps()
    this.collection.close()
  }
}
