export * from './codecs/index.js'
export * from './native/index.js'
