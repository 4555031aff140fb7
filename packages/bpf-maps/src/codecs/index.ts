/**
 * @kmesh-ts/bpf-maps/codecs — byte-exact codecs for every kmesh-ts map record. Loads no native code and uses no
 * Node built-in (Uint8Array and plain JavaScript only; addresses through @kmesh-ts/ip), so a CLI, a web page or a
 * test harness can decode map dumps without libbpf (test/codecs-browser.test.ts runs it as a browser bundle).
 */
export * from './codec.js'
export * from './ip.js'
export * from './port.js'
export * from './records.js'
export * from './maps.js'
export * from './lpm.js'
export * from './authz.js'
export * from './telemetry.js'
