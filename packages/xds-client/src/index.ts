export { XdsClient, isBenignClose } from './client.js'
export type {
  XdsClientOptions,
  TlsOptions,
  SubscriptionOptions,
  BatchHandler,
  HandlerResult,
} from './options.js'
export { DEFAULT_ADDRESS, DEFAULT_CA_FILE, DEFAULT_MAX_RECEIVE_BYTES } from './options.js'
export type { XdsClientEvent } from './events.js'
export type {
  ChangeBatch,
  AddressBatch,
  AuthorizationBatch,
  Added,
  Removal,
  Rejection,
  ResourceKind,
} from './response.js'
export { processResponse, processResponseInSlices, nackMessage } from './response.js'
export { Backoff, DEFAULT_BACKOFF } from './backoff.js'
export type { BackoffOptions } from './backoff.js'
export { istioNode, istioNodeFromEnv } from './node.js'
export type { NodeIdentity } from './node.js'
export {
  decodeAddress,
  decodeAuthorization,
  InvalidResourceError,
  DEFAULT_DECODE_LIMITS,
} from './decode.js'
export type { DecodeLimits } from './decode.js'
export { encodeAddress, encodeAuthorization } from './encode.js'
export type { Init, AddressInit, WorkloadInit, ServiceInit, AuthorizationInit } from './encode.js'
export {
  addressKindByShape,
  serviceKey,
  policyKey,
  serviceKeyProblem,
  namespaceProblem,
  hostnameProblem,
} from './names.js'
export type { AddressKind } from './names.js'
export * from './enums.js'
export * from './types.js'
export type {
  XdsNode,
  JsonValue,
  RpcStatus,
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
  WireResource,
} from './wire.js'
export {
  DELTA_ADS_METHOD,
  encodeDeltaRequest,
  decodeDeltaRequest,
  encodeDeltaResponse,
  decodeDeltaResponse,
} from './wire.js'
export { PROTO_DIR, PROTO_FILES, protoRoot } from './proto.js'
