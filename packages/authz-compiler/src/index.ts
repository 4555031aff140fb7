/**
 * @kmesh-ts/authz-compiler — Istio L4 authorization policies compiled into the maps of kmesh-ts's XDP program
 * (packages/bpf-progs include/authz.h; design in docs/authz-kernel.md). Pure TypeScript and native-free: the
 * `./kernel` entry writes compiled sets into live maps through libbpf.
 */
export {
  AUTHZ_LIMITS,
  AuthzCompileError,
  type AddressIdentity,
  type AuthzLimits,
  type CompiledAuthz,
  type CompiledRoot,
  type CompileInput,
  type ProtectedWorkload,
  addressKey,
  canonicalBytes,
  compileAuthz,
  identityKey,
  type RootsUpdate,
  updateRoots,
} from './compile.js'
export { encodeGeneration, kernelNodeId, mapOfRole, type AuthzMapRole, type PackedRecords } from './encode.js'
export { keyOfPolicy, type PolicyTarget } from './applicable.js'
export type { SourceIdentity } from './ingest.js'
