// The client's behaviour tests again, with the stream carried by @grpc/grpc-js (transport 'grpc-js', what
// channelOptions and unix: addresses choose) instead of the default node:http2 transport.
process.env.KMESH_XDS_TRANSPORT = 'grpc-js'
await import('./client.test.js')
await import('./reconnect.test.js')
