/**
 * @kmesh-ts/bpf-maps/codecs — byte-exact codecs for every kmesh-ts map record. Loads no native code, so a
 * CLI, a web page or a test harness can decode map dumps without libbpf.
 */
export * from './codec.js'
export * from './ip.js'
export * from './port.js'
export * from './records.js'
export * from './maps.js'
export * from './lpm.js'
