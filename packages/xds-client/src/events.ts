// Lifecycle events of the client, one discriminated union so a consumer sees every kind in the signature.
import type { Rejection } from './response.js'

export type XdsClientEvent =
  /** a new stream is being opened (attempt counts from 1 and never resets) */
  | { type: 'connecting'; attempt: number; address: string }
  /** a response was applied and ACKed */
  | { type: 'ack'; typeUrl: string; nonce: string }
  /** a response was NACKed; `message` is exactly what error_detail carried */
  | { type: 'nack'; typeUrl: string; nonce: string; message: string; rejections: Rejection[] }
  /** every watched wildcard type got its first response and it was ACKed */
  | { type: 'ready' }
  /**
   * the stream ended. `benign` is true for istiod's periodic GOAWAY / max connection age and for UNAVAILABLE after
   * a stream that had delivered responses: the backoff was reset, so this is routine, not an error.
   */
  | { type: 'disconnected'; code: number; details: string; benign: boolean; healthy: boolean; retryInMs: number }
  /**
   * something went wrong: before a stream could open (unreadable token or CA file; retried after retryInMs), or
   * while handling a response (retryInMs undefined)
   */
  | { type: 'error'; error: Error; retryInMs: number | undefined }
  /** a response arrived (before it is handled): its size on the wire, for metrics */
  | { type: 'response'; typeUrl: string; bytes: number; resources: number; removed: number }
  /** a response the client did not hand to the handler (unknown type, or its stream already ended) */
  | { type: 'ignored'; typeUrl: string; nonce: string; reason: string }
