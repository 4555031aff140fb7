import type { RawMap, LbMaps } from '../../src/dataplane/map-writer.js'

/** An in-memory stand-in for a BPF hash map, recording every syscall-level operation in one shared log. */
export class MemoryMap implements RawMap {
  readonly data = new Map<string, Buffer>()
  failPutOnKey?: string
  constructor(
    readonly spec: { name: string; maxEntries: number },
    readonly keySize: number,
    readonly valueSize: number,
    readonly log: string[],
  ) {}
  putBatch(keys: Buffer, values: Buffer, count: number): void {
    for (let i = 0; i < count; i++) {
      const k = keys.subarray(i * this.keySize, (i + 1) * this.keySize).toString('hex')
      if (k === this.failPutOnKey) throw new Error(`injected failure on ${this.spec.name}`)
      if (!this.data.has(k) && this.data.size >= this.spec.maxEntries) throw new Error('E2BIG')
      this.data.set(k, Buffer.from(values.subarray(i * this.valueSize, (i + 1) * this.valueSize)))
      this.log.push(`put ${this.spec.name}`)
    }
  }
  deleteBatch(keys: Buffer, count: number): void {
    for (let i = 0; i < count; i++) {
      this.data.delete(keys.subarray(i * this.keySize, (i + 1) * this.keySize).toString('hex'))
      this.log.push(`delete ${this.spec.name}`)
    }
  }
  get(key: Buffer): Buffer | undefined {
    return this.data.get(key.toString('hex'))
  }
  *entries(): IterableIterator<[Buffer, Buffer]> {
    for (const [k, v] of this.data) yield [Buffer.from(k, 'hex'), v]
  }
}

export function memoryMaps(max = 1000): LbMaps & { log: string[] } {
  const log: string[] = []
  return {
    log,
    backend: new MemoryMap({ name: 'km_backend', maxEntries: max }, 4, 80, log),
    endpoint: new MemoryMap({ name: 'km_endpoint', maxEntries: max }, 12, 4, log),
    service: new MemoryMap({ name: 'km_service', maxEntries: max }, 4, 132, log),
    frontend: new MemoryMap({ name: 'km_frontend', maxEntries: max }, 16, 4, log),
  }
}
