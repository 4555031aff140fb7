import type { IpsecKey } from './keyfile.js'

/**
 * Every key loaded so far, by SPI; the key loaded last is current (reference: issue 6, "Every loaded key is kept
 * by its SPI"). Old SPIs stay so that a peer still on an older SPI keeps working until it moves.
 */
export class KeyHistory {
  readonly #bySpi = new Map<number, IpsecKey>()
  #current: IpsecKey | undefined

  /** Records a key and makes it current. A key with an SPI seen before replaces the old entry. */
  add(key: IpsecKey): void {
    this.#bySpi.set(key.spi, key)
    this.#current = key
  }

  get(spi: number): IpsecKey | undefined {
    return this.#bySpi.get(spi)
  }

  has(spi: number): boolean {
    return this.#bySpi.has(spi)
  }

  /** The key loaded last, or undefined before any load. */
  get current(): IpsecKey | undefined {
    return this.#current
  }

  /** Known SPIs, ascending. */
  get spis(): number[] {
    return [...this.#bySpi.keys()].sort((a, b) => a - b)
  }

  get size(): number {
    return this.#bySpi.size
  }
}
