// The limit on this machine: Bun.serve pub/sub with no framework, database or event log. Same routes and
// wire shapes as Vigía (POST /api/v1/readings publishes an entity_event to the `readings` topic).
let seq = 0
let nextId = 0
const iso = (ms: number) => new Date(ms).toISOString()

interface Body {
  sensor_id: number
  temperatura?: number | null
  humedad?: number | null
  values?: Record<string, number>
  timestamp?: string
}

function measurements(body: Body) {
  const values: Record<string, number> = {}
  if (body.temperatura != null) values.temperatura = body.temperatura
  if (body.humedad != null) values.humedad = body.humedad
  return values
}

const server = Bun.serve<{ channel: string }, never>({
  hostname: '127.0.0.1',
  port: Number(process.env.PORT ?? 0),
  // The load generator keeps its HTTP connections between phases.
  idleTimeout: 60,
  async fetch(req, server) {
    const { pathname, searchParams } = new URL(req.url)
    if (pathname === '/api/v1/ws') {
      const channel = searchParams.get('channel') ?? 'general'
      if (server.upgrade(req, { data: { channel } })) return undefined
      return new Response('Expected a websocket connection', { status: 400 })
    }
    if (req.method === 'POST' && pathname === '/api/v1/readings') {
      const body = (await req.json()) as Body
      const at = Date.now()
      const reading = {
        id: ++nextId,
        sensor_id: body.sensor_id,
        temperatura: body.temperatura ?? null,
        humedad: body.humedad ?? null,
        // CONTRACT §7: the event's data carries every measurement in `values` as well.
        values: body.values ?? measurements(body),
        timestamp: body.timestamp ?? iso(at),
        created_at: iso(at),
      }
      server.publish(
        'readings',
        JSON.stringify({
          type: 'entity_event',
          entity_type: 'reading',
          event_type: 'created',
          entity_id: reading.id,
          data: reading,
          timestamp: iso(at),
          metadata: { action: 'create_reading' },
          seq: ++seq,
        }),
      )
      return Response.json(reading, { status: 201 })
    }
    if (pathname === '/health') return Response.json({ status: 'healthy' })
    return new Response('Not found', { status: 404 })
  },
  websocket: {
    idleTimeout: 0,
    perMessageDeflate: false,
    open(ws) {
      ws.subscribe(ws.data.channel)
      ws.send(
        JSON.stringify({
          type: 'connection',
          status: 'connected',
          channel: ws.data.channel,
          timestamp: iso(Date.now()),
        }),
      )
    },
    message() {},
  },
})

process.on('SIGTERM', () => {
  server.stop(true)
  process.exit(0)
})
