/**
 * The libbpf binding (koffi + libbpf.so.1). Importing this loads native code; the codecs entry point
 * (@kmesh-ts/bpf-maps/codecs) never does.
 */
export {
  BpfError,
  MapFullError,
  KeyNotFoundError,
  SpecMismatchError,
  errnoName,
  type BpfErrorDetails,
} from './errors.js'
export { BpfMap, possibleCpus, type MapSpec, type MapInfo, type PutMode } from './map.js'
export { TypedMap } from './typed-map.js'
export { RingBuffer, type RingBufferOptions } from './ring-buffer.js'
export { asBuffer, encodeToBuffer } from './buffers.js'
export {
  BpfProgram,
  BpfLink,
  progArraySet,
  setStatsEnabled,
  programStats,
  type TestRunOptions,
  type TestRunResult,
} from './program.js'
export { Collection, collectionDefaults, type CollectionOptions, type MapMigration } from './collection.js'
export { ensureBpffs, isBpffsMounted } from './bpffs.js'
export {
  AttachType,
  cgroupPrograms,
  linkInfo,
  cgroupId,
  tryLockExclusive,
  type AttachedProgram,
  type CgroupLinkInfo,
} from './attachments.js'
export { probeHelper, probeMapType, probeProgType, type ProbeResult } from './probe.js'
