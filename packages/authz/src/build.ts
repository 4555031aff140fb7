/**
 * Small builders for hand-written policies (tests, examples, the mesh file): every list defaults to empty, as a
 * decoded resource has it.
 */
import { parseCidr } from '@kmesh-ts/ip'
import type {
  Authorization,
  AuthorizationAction,
  AuthorizationAddress,
  AuthorizationScope,
  Clause,
  Match,
  Rule,
  StringMatch,
} from '@kmesh-ts/xds-client'
import { Action, Scope } from './wire.js'

/** A Match; fields not given are empty. */
export const match = (fields: Partial<Match> = {}): Match => ({
  namespaces: [],
  notNamespaces: [],
  serviceAccounts: [],
  notServiceAccounts: [],
  principals: [],
  notPrincipals: [],
  sourceIps: [],
  notSourceIps: [],
  destinationIps: [],
  notDestinationIps: [],
  destinationPorts: [],
  notDestinationPorts: [],
  extensions: [],
  ...fields,
})

/** A clause: its matches are OR-ed. */
export const clause = (...matches: Match[]): Clause => ({ matches })
/** A rule: its clauses are AND-ed; no clause at all matches everything. */
export const rule = (...clauses: Clause[]): Rule => ({ clauses })

export const exact = (value: string): StringMatch => ({ exact: value })
export const prefix = (value: string): StringMatch => ({ prefix: value })
export const suffix = (value: string): StringMatch => ({ suffix: value })
export const presence = (): StringMatch => ({ presence: {} })

/** `10.2.0.0/16`, `fd00::1` (a bare address is /32 or /128) as istiod writes it: address bytes as written. */
export function address(text: string): AuthorizationAddress {
  const c = parseCidr(text)
  return { address: c.address, length: c.prefixLength }
}

export interface PolicyInit {
  name: string
  namespace: string
  /** default NAMESPACE */
  scope?: AuthorizationScope
  /** default ALLOW */
  action?: AuthorizationAction
  /** default none: a policy with no rules never matches */
  rules?: Rule[]
  dryRun?: boolean
}

export const policy = (init: PolicyInit): Authorization => ({
  name: init.name,
  namespace: init.namespace,
  scope: init.scope ?? Scope.NAMESPACE,
  action: init.action ?? Action.ALLOW,
  rules: init.rules ?? [],
  dryRun: init.dryRun ?? false,
  extensions: [],
})
