// Loads the .proto files shipped in this package (../proto, written by us from the wire facts in
// docs/reference/istio-workload-api.md) with protobufjs reflection. protobufjs generates the encoder/decoder of each
// type at first use, so this is as fast as static code without a generation step. The google/protobuf
// well-known types (Any, Empty, Struct, Duration, wrappers) come from protobufjs's bundled copies.
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import protobuf from 'protobufjs'

/** Directory holding workload.proto, authorization.proto and the envoy/google files. */
export const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url))

/** The entry files; their imports pull in the rest. */
export const PROTO_FILES = ['workload.proto', 'authorization.proto', 'envoy/service/discovery/v3/ads.proto'] as const

let root: protobuf.Root | undefined

/** The protobufjs root with every message of this package, loaded once. */
export function protoRoot(): protobuf.Root {
  if (root) return root
  const r = new protobuf.Root()
  // Imports are written relative to the proto directory (as protoc -I proto would resolve them).
  r.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target))
  r.loadSync(PROTO_FILES.map((f) => path.join(PROTO_DIR, f)))
  r.resolveAll()
  root = r
  return r
}

/** A message type by its full name, e.g. `istio.workload.Workload`. */
export function messageType(fullName: string): protobuf.Type {
  return protoRoot().lookupType(fullName)
}

/** An enum by its full name, e.g. `istio.workload.TunnelProtocol`. */
export function enumType(fullName: string): protobuf.Enum {
  return protoRoot().lookupEnum(fullName)
}

/** Lazily resolved message types used on the hot path. */
export const types = {
  get address(): protobuf.Type {
    return cached('istio.workload.Address')
  },
  get authorization(): protobuf.Type {
    return cached('istio.security.Authorization')
  },
  get deltaRequest(): protobuf.Type {
    return cached('envoy.service.discovery.v3.DeltaDiscoveryRequest')
  },
  get deltaResponse(): protobuf.Type {
    return cached('envoy.service.discovery.v3.DeltaDiscoveryResponse')
  },
}

const typeCache = new Map<string, protobuf.Type>()
function cached(name: string): protobuf.Type {
  let t = typeCache.get(name)
  if (!t) {
    t = messageType(name)
    typeCache.set(name, t)
  }
  return t
}
