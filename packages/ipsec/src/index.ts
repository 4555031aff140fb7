export * from './pure.js'
export { watchKeyFile, type KeyWatcher, type KeyWatcherOptions } from './key-watcher.js'
export { XfrmClient, type XfrmClientOptions } from './xfrm/client.js'
