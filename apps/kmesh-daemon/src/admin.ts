/**
 * The admin HTTP endpoint: see src/admin/server.ts for the paths. This module keeps the import path the daemon and
 * the tests use.
 */
export {
  startAdmin,
  type AdminSource,
  type Route,
  type Handler,
  HttpError,
  sendJson,
  sendText,
} from './admin/server.js'
export { listOf, type DumpList, DEFAULT_LIMIT, MAX_LIMIT } from './admin/config-dump.js'
export { XdsStatusRecorder, type XdsStatus } from './admin/xds-status.js'
