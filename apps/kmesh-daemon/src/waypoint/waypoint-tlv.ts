/**
 * The original destination for waypoints (@kmesh-ts/bpf-progs src/sendmsg.c, docs/reference/kmesh-dataplane.md §1.6):
 * a connection the connect hook redirected to a waypoint starts with Kmesh's TLV prefix naming the VIP and port the
 * application dialled. Two attachments, both through pinned bpf_links taken over with BPF_LINK_UPDATE on restart:
 * a sockops program on the managed cgroup (<pinRoot>/links/sockops-waypoint) that puts such sockets into the
 * km_socket sockhash, and the sk_msg program on km_socket (<pinRoot>/links/sendmsg) that writes the prefix on their
 * first send. The object shares km_sockstorage with the connect object through its pin, so it loads after the
 * dataplane, with the capacities its maps have now; then only the links are kept.
 */
import { existsSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { BpfLink, Collection } from '@kmesh-ts/bpf-maps'
import { mapNames } from '@kmesh-ts/kernel-abi'
import { objectMaps, objectPath, programs } from '@kmesh-ts/bpf-progs'
import type { Logger } from '../log.js'
import { attachPinnedCgroupLink } from '../telemetry/pinned-link.js'

export interface WaypointTlvOptions {
  pinRoot: string
  cgroupPath: string
  /** max_entries of the shared maps as pinned now (Dataplane.capacities()). */
  mapSizes: Record<string, number>
  /** The object (default @kmesh-ts/bpf-progs' sendmsg.o). */
  objectPath?: string | undefined
  log: Logger
}

export const WAYPOINT_LINKS = { sockops: 'sockops-waypoint', sendmsg: 'sendmsg' } as const

export class WaypointTlv {
  private constructor(
    private readonly pinRoot: string,
    private readonly links: BpfLink[],
  ) {}

  static start(options: WaypointTlvOptions): WaypointTlv {
    const { pinRoot, cgroupPath, log } = options
    const names = new Set<string>(objectMaps.sendmsg)
    const maxEntries = Object.fromEntries(Object.entries(options.mapSizes).filter(([name]) => names.has(name)))
    const collection = Collection.load({
      objectPath: options.objectPath ?? objectPath('sendmsg'),
      pinRoot,
      maxEntries,
      reusePinned: true,
    })
    const links: BpfLink[] = []
    try {
      const sockops = attachPinnedCgroupLink(
        collection.program(programs.sockopsWaypoint.name),
        cgroupPath,
        join(pinRoot, 'links', WAYPOINT_LINKS.sockops),
      )
      links.push(sockops.link)
      const sendmsg = collection.program(programs.sendmsg.name)
      const pinPath = join(pinRoot, 'links', WAYPOINT_LINKS.sendmsg)
      if (existsSync(pinPath)) {
        // The pinned km_socket was reused, so a link a previous daemon left is on this very map.
        const previous = BpfLink.openPinned(pinPath)
        links.push(previous)
        previous.update(sendmsg)
      } else {
        const link = sendmsg.attachMap(collection.map(mapNames.socket))
        links.push(link)
        link.pin(pinPath)
      }
      log.info({ links: Object.values(WAYPOINT_LINKS), tookOver: sockops.tookOver }, 'waypoint TLV attached')
      return new WaypointTlv(pinRoot, links)
    } catch (err) {
      for (const link of links) link.close()
      throw err
    } finally {
      collection.close()
    }
  }

  /** keepPinned: leave both attachments for the next daemon. Otherwise detach them and unpin km_socket. */
  close({ keepPinned = false }: { keepPinned?: boolean } = {}): void {
    for (const link of this.links) {
      if (!keepPinned) {
        link.unpin()
        link.detach()
      }
      link.close()
    }
    this.links.length = 0
    if (keepPinned) return
    try {
      unlinkSync(join(this.pinRoot, 'maps', mapNames.socket))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
}
