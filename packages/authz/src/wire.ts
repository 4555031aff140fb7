/**
 * The wire enum numbers of istio.security.Authorization (docs/reference/istio-workload-api.md §1.3). The same
 * numbers as `AuthorizationScope` / `AuthorizationAction` of @kmesh-ts/xds-client, repeated here so this package
 * needs xds-client for its types only (no run-time import: xds-client loads gRPC).
 */
import type { AuthorizationAction, AuthorizationScope } from '@kmesh-ts/xds-client'

export const Scope = { GLOBAL: 0, NAMESPACE: 1, WORKLOAD_SELECTOR: 2 } as const satisfies Record<
  string,
  AuthorizationScope
>
export const Action = { ALLOW: 0, DENY: 1 } as const satisfies Record<string, AuthorizationAction>
