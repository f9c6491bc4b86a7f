// Assembles the realtime layer: event log, emitter, hub, publisher, socket handling and retention.
import type { Server } from 'bun'
import type { Config } from '../config'
import type { Database } from '../db'
import type { Logger } from '../lib/logger'
import type { Metrics } from '../lib/metrics'
import { createCluster, type Cluster } from './cluster'
import { createEmitter, type Emitter } from './emitter'
import { deleteThrough, ensureEventMeta, oldestSeq, pruneCutoff, readAfter } from './event-log'
import { Hub } from './hub'
import { Publisher } from './publisher'
import { createSocketLayer, type SnapshotReader, type SocketLayer } from './socket'

export interface Realtime {
  readonly epoch: string
  readonly hub: Hub
  readonly publisher: Publisher
  readonly emitter: Emitter
  readonly sockets: SocketLayer
  /** The other instances (over Redis) and the deployment's stats. */
  readonly cluster: Cluster
  attach(server: Server<unknown>): void
  /** Stops timers and closes every socket with 1001, handing each the `notice` frame first. */
  stop(reason: string, notice?: string): Promise<void>
  /** One retention pass (also run in the background every 10 s); `now` sets the age cut. */
  prune(now?: number): Promise<number>
}

/**
 * Bun's WebSocket options. Our own limit (WEBSOCKET_BACKPRESSURE_LIMIT) is enforced after every
 * send, so a buffer stays below it between sends; Bun's limit sits well above as a backstop, and
 * should it ever be reached Bun closes the socket instead of silently dropping a frame.
 */
export function websocketOptions(config: Readonly<Config>) {
  return {
    maxPayloadLength: config.ws.maxMessageBytes,
    backpressureLimit: config.ws.backpressureLimit + 16 * 1024 * 1024,
    closeOnBackpressureLimit: true,
    // Liveness is ours (WEBSOCKET_PING_INTERVAL / _TIMEOUT), so Bun's own idle timer is off.
    idleTimeout: 0,
    sendPings: false,
    // Negotiated only when enabled; each send then asks for compression (publisher, socket).
    perMessageDeflate: config.ws.compression,
  }
}

/**
 * Events deleted per retention transaction. 500 could not keep up with ingest: at 30 k readings/s for
 * 35 s the log held 650 k events on SQLite and 640 k on PostgreSQL against a retention count of 100 k,
 * each batch waiting its turn behind the ingest batches queued before it. 10,000 take SQLite 12-17 ms,
 * about half an ingest batch of 1,000.
 */
const PRUNE_BATCH = 10_000

/** `snapshot` reads what a `snapshot=latest` socket gets first (the latest values of its sensors). */
export async function createRealtime(
  config: Readonly<Config>,
  db: Database,
  log: Logger,
  metrics: Metrics,
  snapshot?: SnapshotReader,
): Promise<Realtime> {
  const meta = await db.transaction((tx) => ensureEventMeta(tx))
  const hub = new Hub()
  const publisher = new Publisher(
    hub,
    meta.lastSeq,
    log,
    metrics,
    (after, limit) => readAfter(db.read, after, limit),
    config.ws.compression,
  )
  const cluster = createCluster({
    config,
    log,
    metrics,
    hub,
    publisher,
    epoch: meta.epoch,
    sharedLog: db.dialect === 'postgres',
  })
  // Counted where the event was emitted, so the deployment's total is the sum over instances.
  const emitted = {
    entity_event: metrics.eventsEmitted.labels('entity_event'),
    system_event: metrics.eventsEmitted.labels('system_event'),
  }
  const emitter = createEmitter(db, (stored) => {
    // One increment per type and transaction: prom-client hashes its labels on every call.
    let entity = 0
    for (const event of stored) if (event.message.type === 'entity_event') entity += 1
    if (entity > 0) emitted.entity_event.inc(entity)
    if (stored.length > entity) emitted.system_event.inc(stored.length - entity)
    publisher.publish(stored)
    cluster.broadcast(stored)
  })
  await cluster.start()
  const sockets = createSocketLayer({
    config,
    db,
    hub,
    publisher,
    metrics,
    log,
    epoch: meta.epoch,
    snapshot,
  })
  publisher.onBackpressure = sockets.checkTopic
  const timers: Timer[] = []

  /**
   * Deletes what retention lets go in batches of PRUNE_BATCH, one short transaction each, so writers
   * queue behind at most one batch. Nothing a replaying connection has yet to read is deleted.
   */
  const prune = async (now = Date.now()) => {
    let removed = 0
    const cutoff = await pruneCutoff(
      db.read,
      publisher.lastSeq,
      config.events.retentionCount,
      config.events.retentionSeconds,
      now,
    )
    let oldest = await oldestSeq(db.read)
    while (oldest !== undefined && oldest <= cutoff) {
      const from = oldest
      // Scoped with no keys: it writes only the event log, below every seq a writer can still take, so
      // on PostgreSQL it runs beside ingest instead of waiting for every write in flight to finish
      // and holding back the next ones.
      const upTo = await db.transaction(
        async (tx) => {
          const upTo = Math.min(cutoff, from + PRUNE_BATCH - 1, hub.replayFloor())
          if (upTo >= from) await deleteThrough(tx, upTo)
          return upTo
        },
        undefined,
        { keys: [] },
      )
      if (upTo < from) break
      removed += upTo - from + 1
      oldest = upTo + 1
      // Back to the event loop between batches, so requests that arrived meanwhile get the writer.
      await new Promise((resolve) => setImmediate(resolve))
    }
    return removed
  }

  let pruning = false
  const prunePass = () => {
    if (pruning) return
    pruning = true
    prune()
      .catch((error) => log.warn('event retention pass failed', { error: String(error) }))
      .finally(() => (pruning = false))
  }

  return {
    epoch: meta.epoch,
    hub,
    publisher,
    emitter,
    sockets,
    cluster,
    attach(server) {
      publisher.attach(server)
      timers.push(setInterval(sockets.sweep, 1000), setInterval(prunePass, 10_000))
      for (const timer of timers) timer.unref()
    },
    async stop(reason, notice) {
      for (const timer of timers.splice(0)) clearInterval(timer)
      sockets.closeAll(reason, notice)
      publisher.attach(undefined)
      await cluster.stop()
    },
    prune,
  }
}
