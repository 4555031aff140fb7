/** Small HTTP backends that answer every request with their own name: who served a request is the body. */
import { createServer, type Server } from 'node:http'

export interface EchoServer {
  name: string
  host: string
  port: number
  hits: number
  close(): Promise<void>
}

export async function startEchoServer(name: string, host: string, port: number): Promise<EchoServer> {
  const server: Server = createServer((_req, res) => {
    echo.hits++
    res.setHeader('connection', 'close')
    res.end(name)
  })
  const echo: EchoServer = {
    name,
    host,
    port,
    hits: 0,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return echo
}
