/**
 * Taking over from the daemon that ran before (a restart or a rolling upgrade, under the pin-root lock): what the
 * pins hold, and how a new version moves in without a connect that no program handles.
 *
 *  - The pins carry a schema version (<pinRoot>/schema, a one-entry array map): the layout of the records in the
 *    pinned maps. A daemon refuses pins of a newer schema (a downgrade would misread them) and upgrades older ones.
 *  - A pinned map whose spec the new daemon wants changed (another --map-size; a bigger capacity in a new version)
 *    is migrated: a fresh map is created beside it, the records are copied in batches, the new programs are loaded
 *    against it, the pinned links are switched to the new programs with BPF_LINK_UPDATE, and only then is the new
 *    map's pin renamed over the old one. A map the new version adds is simply created. At no instant is a connect
 *    without a program, and at no instant does a program see a half-copied map.
 *  - Records whose size changed need a converter from the old schema; there is none yet (schema 1 is the first),
 *    so such a change is refused with a message instead of copying bytes that mean something else.
 */
import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { BpfMap, type Collection, type MapMigration } from '@kmesh-ts/bpf-maps'
import type { Logger } from '../log.js'

/** The record layout of the pinned maps this daemon writes. Bump when a record's bytes change meaning. */
export const PIN_SCHEMA_VERSION = 1

const ARRAY = 2
const schemaPath = (pinRoot: string): string => join(pinRoot, 'schema')

/** The schema the pins under pinRoot carry; undefined when there are none (a first start, or pins before schemas). */
export function pinnedSchema(pinRoot: string): number | undefined {
  const path = schemaPath(pinRoot)
  if (!existsSync(path)) return undefined
  using map = BpfMap.openPinned(path, { type: ARRAY, keySize: 4, valueSize: 4 })
  return map.get(Buffer.alloc(4))?.readUInt32LE(0)
}

/** Refuses pins of a newer schema, naming both versions and what to do. */
export function checkSchema(pinRoot: string): number | undefined {
  const found = pinnedSchema(pinRoot)
  if (found !== undefined && found > PIN_SCHEMA_VERSION) {
    throw new Error(
      `the pins under ${pinRoot} carry schema ${found}, written by a newer kmesh-daemon; this one reads schema ` +
        `${PIN_SCHEMA_VERSION} and refuses to downgrade them. Roll forward, or stop every daemon on this pin root ` +
        `and remove ${pinRoot} (that drops the kernel's state: connects are not redirected until a daemon starts).`,
    )
  }
  return found
}

/** Writes this daemon's schema into the pins (creating the schema map on a first start). */
export function writeSchema(pinRoot: string): void {
  const path = schemaPath(pinRoot)
  const value = Buffer.alloc(4)
  value.writeUInt32LE(PIN_SCHEMA_VERSION)
  if (existsSync(path)) {
    using map = BpfMap.openPinned(path, { type: ARRAY, keySize: 4, valueSize: 4 })
    map.put(Buffer.alloc(4), value)
    return
  }
  using map = BpfMap.create({ name: 'km_schema', type: ARRAY, keySize: 4, valueSize: 4, maxEntries: 1, flags: 0 })
  map.put(Buffer.alloc(4), value)
  map.pin(path)
}

/** A plain stop removes the schema pin with the maps it describes. */
export function removeSchema(pinRoot: string): void {
  rmSync(schemaPath(pinRoot), { force: true })
}

/** Map types whose contents cannot be carried over by copying records. */
const NOT_COPIED = new Set([3 /* prog_array: refilled with the new programs */, 24 /* sk_storage: per socket */])

/**
 * Copies every record of each migrated map from its old pin into the new map (batch reads and writes). Refuses a
 * change of key or value size (no converter yet) and a map whose records no longer fit.
 */
export function copyMigratedMaps(collection: Collection, log: Logger): Array<MapMigration & { records: number }> {
  const done: Array<MapMigration & { records: number }> = []
  for (const m of collection.migrations) {
    const next = collection.map(m.name)
    if (NOT_COPIED.has(next.spec.type)) {
      done.push({ ...m, records: 0 })
      continue
    }
    using old = BpfMap.openPinned(m.oldPin)
    const o = old.spec
    if (o.keySize !== next.spec.keySize || o.valueSize !== next.spec.valueSize) {
      throw new Error(
        `map ${m.name}: the pinned records are ${o.keySize}+${o.valueSize} bytes and this version's are ` +
          `${next.spec.keySize}+${next.spec.valueSize}; there is no converter from schema ` +
          `${PIN_SCHEMA_VERSION} for it (${m.change})`,
      )
    }
    const { keys, values, count } = old.lookupBatch()
    if (count > next.spec.maxEntries) {
      throw new Error(
        `map ${m.name} holds ${count} records; the new capacity is ${next.spec.maxEntries}: refusing to shrink below its contents`,
      )
    }
    if (count > 0) next.putBatch(keys, values, count)
    done.push({ ...m, records: count })
  }
  if (done.length)
    log.info(
      { maps: done.map((d) => `${d.name} (${d.change}; ${d.records} records)`) },
      'migrating maps to a new spec: records copied, programs switch next',
    )
  return done
}
