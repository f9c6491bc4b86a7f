// Health response schema.
import { t } from 'elysia'

export const Health = t.Object({
  status: t.UnionEnum(['ok', 'degraded']),
  version: t.String(),
  uptime_seconds: t.Integer(),
  database: t.Object({ status: t.UnionEnum(['ok', 'down']), dialect: t.String() }),
  pubsub: t.Object({ mode: t.String(), status: t.String(), instance: t.String() }),
  websocket: t.Object({ connections: t.Integer(), max_connections: t.Integer() }),
  events: t.Object({ epoch: t.String(), last_seq: t.Integer() }),
})
export type Health = typeof Health.static
