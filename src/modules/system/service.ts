// Health and readiness: is the database answering, how many sockets are open, where the log stands.
import type { AppContext } from '../../context'

export async function health(ctx: AppContext, version: string) {
  let database: 'ok' | 'down' = 'ok'
  try {
    await ctx.db.ping()
  } catch {
    database = 'down'
  }
  const { realtime, config } = ctx
  const mqtt = ctx.mqtt.status()
  return {
    status:
      database === 'ok' && mqtt.status !== 'degraded' ? ('ok' as const) : ('degraded' as const),
    version,
    uptime_seconds: Math.round((Date.now() - ctx.startedAt) / 1000),
    database: { status: database, dialect: ctx.db.dialect },
    pubsub: {
      mode: realtime.cluster.mode,
      status: realtime.cluster.healthy ? 'ok' : 'down',
      instance: realtime.cluster.instanceId,
    },
    websocket: {
      connections: realtime.hub.size,
      max_connections: config.ws.maxConnections,
    },
    events: { epoch: realtime.epoch, last_seq: realtime.publisher.lastSeq },
    mqtt,
  }
}
