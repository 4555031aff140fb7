/**
 * What the admin endpoint shows of the xDS stream: connected or not, the last ACK per type, and the last NACK with
 * its reasons (capped: a NACK of a 100k-resource push can name every resource).
 */
import type { XdsClientEvent } from '@kmesh-ts/xds-client'

/** Rejections kept of the last NACK; `rejected` says how many there were. */
export const NACK_REASONS_KEPT = 100

export interface XdsStatus {
  address?: string | undefined
  connected: boolean
  attempts: number
  lastAck: Record<string, { at: string; nonce: string }>
  lastNack?: {
    at: string
    typeUrl: string
    nonce: string
    message: string
    rejected: number
    rejections: Array<{ name: string; reason: string }>
  }
  lastDisconnect?: { at: string; code: number; details: string; benign: boolean }
  lastError?: { at: string; error: string }
}

export class XdsStatusRecorder {
  readonly status: XdsStatus = { connected: false, attempts: 0, lastAck: {} }

  onEvent = (e: XdsClientEvent): void => {
    const at = new Date().toISOString()
    const s = this.status
    if (e.type === 'connecting') {
      s.attempts = e.attempt
      s.address = e.address
    } else if (e.type === 'response') s.connected = true
    else if (e.type === 'ack') s.lastAck[e.typeUrl] = { at, nonce: e.nonce }
    else if (e.type === 'nack')
      s.lastNack = {
        at,
        typeUrl: e.typeUrl,
        nonce: e.nonce,
        message: e.message.slice(0, 4096),
        rejected: e.rejections.length,
        rejections: e.rejections.slice(0, NACK_REASONS_KEPT),
      }
    else if (e.type === 'disconnected') {
      s.connected = false
      s.lastDisconnect = { at, code: e.code, details: e.details, benign: e.benign }
    } else if (e.type === 'error') s.lastError = { at, error: e.error.message }
  }
}
