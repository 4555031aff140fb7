/**
 * The client's defaults, in a module that imports nothing: a command line can show them in its help (as
 * kmesh-daemon's does) without loading gRPC and protobufjs, about a megabyte and a half of JavaScript.
 * Exported as `@kmesh-ts/xds-client/defaults`.
 */
export const DEFAULT_ADDRESS = 'istiod.istio-system.svc:15012'
export const DEFAULT_CA_FILE = '/var/run/secrets/istio/root-cert.pem'
export const DEFAULT_MAX_RECEIVE_BYTES = 200 * 1024 * 1024
