import { createServer } from 'node:http'
let conns = 0
const srv = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    res.end('ok')
  })
})
srv.on('connection', () => conns++)
await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
const port = (srv.address() as any).port
async function snippet(res: Response) {
  const reader = res.body!.getReader()
  let size = 0
  try {
    while (size < 4096) {
      const { value, done } = await reader.read()
      if (done) break
      size += value.byteLength
    }
  } finally {
    reader.cancel().catch(() => {})
  }
}
const variants: Record<string, (r: Response) => Promise<unknown>> = {
  snippet,
  text: (r) => r.text(),
  ab: (r) => r.arrayBuffer(),
}
for (const [name, read] of Object.entries(variants)) {
  conns = 0
  const N = 2000
  const t = performance.now()
  const cpu0 = process.cpuUsage()
  for (let i = 0; i < N; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/x`, {
      method: 'POST',
      body: 'x'.repeat(300),
      headers: { host: 'foo:1', 'content-type': 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(10000),
    })
    await read(res)
  }
  const c = process.cpuUsage(cpu0)
  console.log(
    name,
    'us/req',
    (((performance.now() - t) * 1000) / N).toFixed(0),
    'cpu us/req',
    ((c.user + c.system) / N).toFixed(0),
    'conns',
    conns,
  )
}
srv.close()
