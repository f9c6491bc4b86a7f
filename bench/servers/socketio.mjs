// What a user would pick instead: Socket.IO 4 on Node.js with one room per channel, default options.
// Same routes and payloads as Vigía (POST /api/v1/readings emits an entity_event to the `readings` room).
import { createServer } from 'node:http'
import { Server } from 'socket.io'

let seq = 0
let nextId = 0
const iso = (ms) => new Date(ms).toISOString()

const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

const http = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/api/v1/readings') {
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString())
      const at = Date.now()
      const reading = {
        id: ++nextId,
        sensor_id: body.sensor_id,
        temperatura: body.temperatura ?? null,
        humedad: body.humedad ?? null,
        timestamp: body.timestamp ?? iso(at),
        created_at: iso(at),
      }
      io.to('readings').emit('entity_event', {
        type: 'entity_event',
        entity_type: 'reading',
        event_type: 'created',
        entity_id: reading.id,
        data: reading,
        timestamp: iso(at),
        metadata: { action: 'create_reading' },
        seq: ++seq,
      })
      json(res, 201, reading)
    })
    return
  }
  if (req.url === '/health') return json(res, 200, { status: 'healthy' })
  json(res, 404, { error: 'not_found' })
})

const io = new Server(http, { serveClient: false })

io.on('connection', (socket) => {
  const channel = String(socket.handshake.query.channel ?? 'general')
  socket.join(channel)
  socket.emit('status', {
    type: 'connection',
    status: 'connected',
    channel,
    timestamp: iso(Date.now()),
  })
})

// The load generator keeps its HTTP connections between phases; Node's 5 s default would reset them.
http.keepAliveTimeout = 60_000
http.listen(Number(process.env.PORT ?? 0), '127.0.0.1')

process.on('SIGTERM', () => {
  io.close()
  process.exit(0)
})
