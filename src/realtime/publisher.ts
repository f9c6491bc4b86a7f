// Fans committed events out with server.publish, strictly in seq order, each frame serialized once;
// a seq that does not arrive (another instance's, a lost Redis message) is read from the shared event log.
import type { Server } from 'bun'
import type { Logger } from '../lib/logger'
import type { Metrics } from '../lib/metrics'
import type { LogRow } from './event-log'
import type { Hub } from './hub'

/** A committed event as it travels: from this instance's commits, from Redis or from the log. */
export type Frame = LogRow

/** Reads committed events with seq > after, in seq order. */
export type ReadLog = (after: number, limit: number) => Promise<Frame[]>

/** How long a missing seq may take to arrive (Redis is usually much faster) before the log is read. */
const GAP_GRACE_MS = 100
const RETRY_MS = 1000
const PAGE = 1000

export class Publisher {
  private server: Server<unknown> | undefined
  private readonly pending = new Map<number, Frame>()
  private gapTimer: Timer | undefined
  private catching: Promise<void> | undefined
  private catchAgain = false
  private failing = false
  private stopped = false
  /** Every event with a seq up to this one has been handed to Bun's pub/sub. */
  lastSeq: number
  /**
   * Called when a publish reports backpressure on some subscriber of `topic` (status -1 or 0), so
   * the socket layer can close the ones whose buffer reached the limit before Bun would drop a frame.
   */
  onBackpressure: ((topic: string) => void) | undefined

  private readonly liveSent

  constructor(
    private readonly hub: Hub,
    initialSeq: number,
    private readonly log: Logger,
    metrics: Metrics,
    private readonly readLog?: ReadLog,
    /** WEBSOCKET_COMPRESSION: compress each frame for the clients that negotiated permessage-deflate. */
    private readonly compress = false,
  ) {
    this.lastSeq = initialSeq
    this.liveSent = metrics.wsMessagesSent.labels('live')
  }

  attach(server: Server<unknown> | undefined) {
    this.server = server
    if (!server) {
      this.stopped = true
      clearTimeout(this.gapTimer)
    }
  }

  /**
   * Takes committed events in any order and publishes them in seq order: an event waits until
   * every smaller seq has gone out. Seqs are gap-free (they roll back with their change) and handed
   * out in commit order, so once a seq is here every smaller one is committed and readable from the
   * log: a gap that does not fill by itself within GAP_GRACE_MS is read from there.
   */
  publish(frames: readonly Frame[]) {
    for (const frame of frames) if (frame.seq > this.lastSeq) this.pending.set(frame.seq, frame)
    let next = this.pending.get(this.lastSeq + 1)
    while (next) {
      this.pending.delete(next.seq)
      this.lastSeq = next.seq
      this.fanOut(next)
      next = this.pending.get(this.lastSeq + 1)
    }
    if (this.pending.size > 0) this.fillGapSoon(GAP_GRACE_MS)
  }

  /** Publishes every event in the log past lastSeq (after a gap, a Redis reconnect, or on a poll). */
  catchUp(): Promise<void> {
    if (!this.readLog || this.stopped) return Promise.resolve()
    if (this.catching) {
      this.catchAgain = true
      return this.catching
    }
    this.catching = this.readForward(this.readLog).finally(() => (this.catching = undefined))
    return this.catching
  }

  private async readForward(readLog: ReadLog) {
    do {
      this.catchAgain = false
      const waiting = [...this.pending.keys()]
      for (;;) {
        const rows = await readLog(this.lastSeq, PAGE)
        const first = rows[0]
        if (!first) break
        if (first.seq > this.lastSeq + 1) {
          // Only retention pruning leaves holes in the log: those events are gone for everyone.
          this.log.warn('events pruned before this instance published them', {
            from: this.lastSeq + 1,
            to: first.seq - 1,
          })
          this.lastSeq = first.seq - 1
        }
        this.publish(rows)
        if (rows.length < PAGE) break
      }
      // A frame that was waiting before this read and is still not reachable in the log was never
      // committed (a forged or corrupt message): drop it rather than stall behind it.
      for (const seq of waiting)
        if (seq > this.lastSeq && this.pending.delete(seq))
          this.log.warn('dropped an event frame that is not in the event log', { seq })
    } while (this.catchAgain)
  }

  private fillGapSoon(delay: number) {
    if (this.gapTimer || !this.readLog || this.stopped) return
    this.gapTimer = setTimeout(() => {
      this.gapTimer = undefined
      if (this.pending.size === 0) return
      this.catchUp().then(
        () => {
          if (this.failing) this.log.info('event log readable again; gap filled')
          this.failing = false
        },
        (error) => {
          if (!this.failing)
            this.log.warn('cannot read the event log to fill a gap; retrying', {
              after: this.lastSeq,
              error: String(error),
            })
          this.failing = true
          this.fillGapSoon(RETRY_MS)
        },
      )
    }, delay)
  }

  private fanOut(frame: Frame) {
    const server = this.server
    if (!server) return
    const { topics, reached } = this.hub.topicsFor(frame.channels)
    for (const topic of topics) {
      try {
        if (server.publish(topic, frame.payload, this.compress) <= 0) this.onBackpressure?.(topic)
      } catch (error) {
        this.log.error('publish failed', { topic, seq: frame.seq, error: String(error) })
      }
    }
    if (reached > 0) this.liveSent.inc(reached)
  }
}
