export * from './privileged.js'
export * from './resources.js'
