export {
  runInVm,
  vmCommandFor,
  vmMissing,
  vmSkip,
  vmDefaults,
  type VmRunOptions,
  type VmRunResult,
  type VmTimings,
} from './run.js'
export { vmCache, type VmCache } from './cache.js'
