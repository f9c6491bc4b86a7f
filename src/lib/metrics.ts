// Prometheus metrics for one server instance (its own registry, so several can run in one process).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

type HttpLabel = 'method' | 'route' | 'status'

export function createMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'vigia_' })
  // prom-client names these gauges `_total`, which Prometheus keeps for counters (`promtool check
  // metrics` refuses them); each is the sum of its unsuffixed, labelled gauge, which stays.
  for (const name of ['active_handles', 'active_requests', 'active_resources'])
    registry.removeSingleMetric(`vigia_nodejs_${name}_total`)
  const metrics = {
    registry,
    mqtt: mqttMetrics(registry),
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
  // The label children of each (method, route, status), resolved once (prom-client still joins the label
  // values into its key on every inc and observe: about 1 % of a single POST's CPU).
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

/** The MQTT ingestion's counters (src/ingest/mqtt). */
function mqttMetrics(registry: Registry) {
  return {
    connected: new Gauge({
      name: 'vigia_mqtt_connected',
      help: '1 while the MQTT ingestion is connected to its broker, else 0',
      registers: [registry],
    }),
    connects: new Counter({
      name: 'vigia_mqtt_connects_total',
      help: 'Successful connections to the MQTT broker (the first one and every reconnection)',
      registers: [registry],
    }),
    messages: new Counter({
      name: 'vigia_mqtt_messages_total',
      help: 'MQTT messages handled, by outcome (stored, rejected)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    readingsStored: new Counter({
      name: 'vigia_mqtt_readings_stored_total',
      help: 'Readings stored from MQTT messages',
      registers: [registry],
    }),
    rejected: new Counter({
      name: 'vigia_mqtt_rejected_total',
      help: 'MQTT messages rejected (acknowledged, nothing stored), by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    batchMessages: new Histogram({
      name: 'vigia_mqtt_batch_messages',
      help: 'MQTT messages stored per transaction (a burst is batched)',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers: [registry],
    }),
    storeFailures: new Counter({
      name: 'vigia_mqtt_store_failures_total',
      help: 'Attempts to store an MQTT message that failed and were retried (message not acknowledged)',
      registers: [registry],
    }),
  }
}
