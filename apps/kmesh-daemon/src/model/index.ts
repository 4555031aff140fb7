/**
 * The mesh model: what both sources (the mesh file, istiod's xDS) convert into and the processor consumes. The
 * authorization policy store joins it here (issue 12): policies are part of `MeshConfig` already.
 */
export type * from './mesh.js'
export * from './keys.js'
export * from './delta.js'
export * from './shared-values.js'
export * from './defaults.js'
