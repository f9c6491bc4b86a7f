// Health response schema.
import { t } from 'elysia'
import { OneOf } from '../../lib/schemas'

export const Health = t.Object({
  status: OneOf(['ok', 'degraded']),
  version: t.String(),
  uptime_seconds: t.Integer(),
  database: t.Object({ status: OneOf(['ok', 'down']), dialect: t.String() }),
  pubsub: t.Object({ mode: t.String(), status: t.String(), instance: t.String() }),
  websocket: t.Object({ connections: t.Integer(), max_connections: t.Integer() }),
  events: t.Object({ epoch: t.String(), last_seq: t.Integer() }),
  mqtt: t.Object({
    status: OneOf(['ok', 'degraded', 'disabled']),
    connected: t.Boolean(),
    broker: t.Nullable(t.String()),
    topic: t.Nullable(t.String()),
    client_id: t.Nullable(t.String()),
    last_error: t.Nullable(t.String()),
  }),
})
export type Health = typeof Health.static
