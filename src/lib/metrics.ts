// Prometheus metrics for one server instance (its own registry, so several can run in one process).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

type HttpLabel = 'method' | 'route' | 'status'

export function createMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'vigia_' })
  const metrics = {
    registry,
    wsConnections: new Gauge({
      name: 'vigia_ws_connections',
      help: 'Open WebSocket connections',
      registers: [registry],
    }),
    wsConnectionsTotal: new Counter({
      name: 'vigia_ws_connections_total',
      help: 'WebSocket connections accepted since start',
      registers: [registry],
    }),
    wsRejected: new Counter({
      name: 'vigia_ws_rejected_total',
      help: 'WebSocket connections refused, by close code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    wsMessagesSent: new Counter({
      name: 'vigia_ws_messages_sent_total',
      help: 'Event frames delivered to WebSocket clients (live and replayed)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    wsMessagesReceived: new Counter({
      name: 'vigia_ws_messages_received_total',
      help: 'Messages received from WebSocket clients',
      registers: [registry],
    }),
    wsDropped: new Counter({
      name: 'vigia_ws_dropped_total',
      help: 'WebSocket clients dropped by the server, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    eventsEmitted: new Counter({
      name: 'vigia_events_emitted_total',
      help: 'Events emitted (entity and system), each with its own seq',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    wsReplayPauses: new Counter({
      name: 'vigia_ws_replay_pauses_total',
      help: 'Times a replay waited for a client to read its buffer before sending more',
      registers: [registry],
    }),
  }
  const httpRequests = new Counter({
    name: 'vigia_http_requests_total',
    help: 'HTTP requests by method, route (the matched pattern) and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  })
  const httpDuration = new Histogram({
    name: 'vigia_http_request_duration_seconds',
    help: 'HTTP request latency by method, route (the matched pattern) and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  // The label children of each (method, route, status), resolved once: no label hashing per request.
  const httpChildren = new Map<
    string,
    { count: Counter.Internal; latency: Histogram.Internal<HttpLabel> }
  >()

  return {
    ...metrics,
    httpRequests,
    httpDuration,
    /** Counts one finished HTTP request and its latency. */
    observeHttp(method: string, route: string, status: number, seconds: number) {
      const key = `${method} ${status} ${route}`
      let child = httpChildren.get(key)
      if (!child) {
        const labels = { method, route, status: String(status) }
        child = { count: httpRequests.labels(labels), latency: httpDuration.labels(labels) }
        httpChildren.set(key, child)
      }
      child.count.inc()
      child.latency.observe(seconds)
    },
  }
}

export type Metrics = ReturnType<typeof createMetrics>
