// Fans committed events out with server.publish, strictly in seq order, each frame serialized once.
import type { Server } from 'bun'
import type { Logger } from '../lib/logger'
import type { Metrics } from '../lib/metrics'
import type { StoredEvent } from './event-log'
import type { Hub } from './hub'

export class Publisher {
  private server: Server<unknown> | undefined
  private readonly pending = new Map<number, StoredEvent>()
  private readonly topics: string[] = []
  /** Every event with a seq up to this one has been handed to Bun's pub/sub. */
  lastSeq: number
  /**
   * Called when a publish reports backpressure on some subscriber of `topic` (status -1 or 0), so
   * the socket layer can close the ones whose buffer reached the limit before Bun would drop a frame.
   */
  onBackpressure: ((topic: string) => void) | undefined

  private readonly emitted
  private readonly liveSent

  constructor(
    private readonly hub: Hub,
    initialSeq: number,
    private readonly log: Logger,
    metrics: Metrics,
  ) {
    this.lastSeq = initialSeq
    this.emitted = {
      entity_event: metrics.eventsEmitted.labels('entity_event'),
      system_event: metrics.eventsEmitted.labels('system_event'),
    }
    this.liveSent = metrics.wsMessagesSent.labels('live')
  }

  attach(server: Server<unknown> | undefined) {
    this.server = server
  }

  /**
   * Takes committed events in any order and publishes them in seq order: an event waits until
   * every smaller seq has gone out (seqs are gap-free because they roll back with their change).
   */
  publish(events: readonly StoredEvent[]) {
    for (const event of events) if (event.seq > this.lastSeq) this.pending.set(event.seq, event)
    let next = this.pending.get(this.lastSeq + 1)
    while (next) {
      this.pending.delete(next.seq)
      this.lastSeq = next.seq
      this.fanOut(next)
      next = this.pending.get(this.lastSeq + 1)
    }
  }

  private fanOut(event: StoredEvent) {
    this.emitted[event.message.type].inc()
    const server = this.server
    if (!server) return
    const reached = this.hub.topicsFor(event.channels, this.topics)
    for (const topic of this.topics) {
      try {
        if (server.publish(topic, event.payload) <= 0) this.onBackpressure?.(topic)
      } catch (error) {
        this.log.error('publish failed', { topic, seq: event.seq, error: String(error) })
      }
    }
    if (reached > 0) this.liveSent.inc(reached)
  }
}
