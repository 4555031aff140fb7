/**
 * @kmesh-ts/kernel-abi — what userspace must agree on with the kmesh-ts BPF programs. The numbers and map names
 * are generated from the C headers of @kmesh-ts/bpf-progs (./constants.ts, C names kept); this file only groups
 * them for TypeScript. No dependencies and no Node built-ins, so a web page can use it as the daemon does.
 */
export * from './constants.js'
export { LB_POLICY, lbPolicyName, type LbPolicy } from './lb-policy.js'
export { mapNames, type MapName } from './maps.js'
export { IPSEC_MARKS, MANAGE_CONTROL, ERRNO, type RefuseErrno } from './groups.js'
