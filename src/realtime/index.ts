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
import { createSocketLayer, type SocketLayer } from './socket'

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
  /** One retention pass (also run in the background). */
  prune(): Promise<number>
}

const PRUNE_BATCH = 5000

export async function createRealtime(
  config: Readonly<Config>,
  db: Database,
  log: Logger,
  metrics: Metrics,
): Promise<Realtime> {
  const meta = await db.transaction((tx) => ensureEventMeta(tx))
  const hub = new Hub()
  const publisher = new Publisher(hub, meta.lastSeq, log, metrics, (after, limit) =>
    readAfter(db.read, after, limit),
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
  const emitter = createEmitter(db, (stored) => {
    for (const event of stored) metrics.eventsEmitted.inc({ type: event.message.type })
    publisher.publish(stored)
    cluster.broadcast(stored)
  })
  await cluster.start()
  const sockets = createSocketLayer({ config, db, hub, publisher, metrics, log, epoch: meta.epoch })
  const timers: Timer[] = []

  const prune = async () => {
    let removed = 0
    const cutoff = await pruneCutoff(
      db.read,
      publisher.lastSeq,
      config.events.retentionCount,
      config.events.retentionSeconds,
    )
    let oldest = await oldestSeq(db.read)
    while (oldest !== undefined && oldest <= cutoff) {
      const upTo = Math.min(cutoff, oldest + PRUNE_BATCH - 1)
      await db.transaction((tx) => deleteThrough(tx, upTo))
      removed += upTo - oldest + 1
      oldest = upTo + 1
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
