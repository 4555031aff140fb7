export * from './privileged.js'
export * from './resources.js'
export * from './readme.js'
export * from './random.js'
