export { startDaemon, type Daemon } from './daemon.js'
export {
  DEFAULTS,
  resolveOptions,
  type DaemonOptions,
  type ResolvedOptions,
  type XdsOptions,
  type IpsecOptions,
} from './options.js'
export { parseCli, HELP, UsageError } from './cli.js'
export { computeIntent, type Intent } from './processor/intent.js'
export { imageOf, layoutBucket } from './processor/records.js'
export { planWrites, changesTo } from './dataplane/plan.js'
export { MapWriter, CapacityError, ApplyError } from './dataplane/map-writer.js'
export { IdTable } from './ids/id-table.js'
export { createLogger, type Logger, type LogFormat } from './log.js'
export { WorkloadProcessor } from './processor/processor.js'
export { MeshEngine } from './processor/engine.js'
export {
  deltaBetween,
  type MeshDelta,
  type MeshConfig,
  type Workload,
  type Service,
  type Policy,
} from './model/index.js'
export { parseMeshFile, readMeshFile, MeshFileError } from './mesh-file/index.js'
export { readMeshFileIsolated } from './mesh-file/index.js'
export { LockHeldError } from './system/dir-lock.js'
export { CgroupRefusedError } from './dataplane/cgroup-guard.js'
export {
  installCni,
  uninstallCni,
  startCniServer,
  CniConfigError,
  DEFAULT_CNI_SOCKET,
  type CniInstallOptions,
  type CniInstallResult,
  type CniPod,
  type CniServer,
  type CniServerOptions,
  type EnrolDecision,
} from './cni/index.js'
