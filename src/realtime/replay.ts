// Replay: what a WebSocket is sent before it joins its live topic when it resumes from `since` or starts
// from `snapshot=latest`: retained events after a seq, paced by the client's unsent buffer, ending exactly
// where the live stream begins.
import type { Database } from '../db'
import type { Metrics } from '../lib/metrics'
import { snapshotCoverage, type SnapshotCoverage } from './channels'
import { inChannels, oldestSeq, readRange, type LogRow } from './event-log'
import type { Conn, Hub } from './hub'
import type { Publisher } from './publisher'

const REPLAY_PAGE = 1000
/** How long a resume waits for this instance to read a `since` that is ahead of it from the log. */
const CATCH_UP_MS = 5000

/** `work`, or an error once `ms` have passed without it settling. */
async function bounded<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: Timer | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not done within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([work, late])
  } finally {
    clearTimeout(timer)
  }
}

/** The log no longer holds the seq after `after`: retention removed it while a replay was reading. */
export class HistoryGap extends Error {
  constructor(readonly after: number) {
    super(`event log has no seq ${after + 1}`)
  }
}

/** The latest values of the covered sensors (a JSON array, as text) and the seq of the last event they include. */
export type SnapshotReader = (coverage: SnapshotCoverage) => Promise<{ seq: number; data: string }>

export interface ReplayDeps {
  db: Database
  hub: Hub
  publisher: Publisher
  metrics: Metrics
  /** This database's epoch: a `since` from another names nothing here. */
  epoch: string
  /** WEBSOCKET_BACKPRESSURE_LIMIT and WEBSOCKET_COMPRESSION. */
  limit: number
  compress: boolean
  /** Sends the connection message (with `extra`), then lets the client's queued messages run. */
  greet(conn: Conn, channel: string, extra?: { recovered: boolean; oldest_seq: number }): void
  stopping(): boolean
}

export function createReplay(deps: ReplayDeps) {
  const { db, hub, publisher, metrics, limit, compress, greet, stopping } = deps
  const pauses = metrics.wsReplayPauses
  const replayed = metrics.wsMessagesSent.labels('replay')
  const control = metrics.wsMessagesSent.labels('control')

  /**
   * Sends a replayed frame, then waits while the client's unsent buffer is over half the limit, so a
   * replay never grows the buffer past it and Bun never has a reason to drop a frame.
   */
  const sendPaced = async (conn: Conn, frame: string) => {
    conn.ws.send(frame, compress)
    let paused = false
    while (!conn.closed && conn.ws.getBufferedAmount() > limit / 2) {
      if (!paused) pauses.inc()
      paused = true
      await new Promise<void>((resolve) => (conn.drained = resolve))
      conn.drained = undefined
    }
  }

  /**
   * Sends the connection message, then every retained event of the connection's channels after
   * `since`, then joins the live topic. Replay reads only what the publisher has already sent out
   * (`publisher.lastSeq`) and ends in a synchronous check-and-join: if nothing was published since
   * the last read, the connection subscribes before the next publish can run, so the first live
   * event is exactly the one after the last replayed one.
   *
   * `recovered` is decided from the rows actually read: the first retained seq after `since` must be
   * `since + 1`. Retention never deletes past a replaying connection's cursor; should the log still
   * show a hole mid-replay, the socket is closed rather than let a gap through silently.
   */
  const resume = async (conn: Conn, since: number, epoch: string | undefined, channel: string) => {
    let target = publisher.lastSeq
    const sameEpoch = epoch === undefined || epoch === deps.epoch
    // A since ahead of what this instance has published may be another instance's event that has not
    // reached it yet (Redis away, the log read every 250 ms): read the log up to now first.
    if (sameEpoch && since > target) {
      await bounded(publisher.catchUp(), CATCH_UP_MS)
      target = publisher.lastSeq
    }
    // A seq from another history (other epoch, or ahead of this log) means nothing here.
    const sameHistory = sameEpoch && since <= target
    let rows: LogRow[] | undefined =
      sameHistory && since < target
        ? await readRange(db.read, since, target, REPLAY_PAGE)
        : undefined
    const oldest = Math.min((await oldestSeq(db.read)) ?? target + 1, rows?.[0]?.seq ?? Infinity)
    const recovered = sameHistory && (since === target || rows?.[0]?.seq === since + 1)
    greet(conn, channel, { recovered, oldest_seq: oldest })

    await follow(conn, sameHistory ? since : target, target, rows, !recovered)
  }

  /**
   * Sends every event of the connection's channels after `cursor` (the log read up to `target`, and
   * on as the publisher moves), then joins the live topic: the first live event is the one after the
   * last sent. `rows` is a first page already read; `skipAllowed` lets the first seq read be past
   * cursor + 1 (history that no longer reaches back; the caller said so).
   */
  const follow = async (
    conn: Conn,
    cursor: number,
    target: number,
    rows: LogRow[] | undefined,
    skipAllowed: boolean,
  ) => {
    for (;;) {
      while (cursor < target && !conn.closed) {
        // The first page was read above, for `recovered`; every later one is read here.
        const page = rows ?? (await readRange(db.read, cursor, target, REPLAY_PAGE))
        rows = undefined
        if (page.length === 0) {
          if (!skipAllowed) throw new HistoryGap(cursor)
          cursor = target
          break
        }
        let count = 0
        for (const row of page) {
          if (row.seq !== cursor + 1 && !skipAllowed) throw new HistoryGap(cursor)
          skipAllowed = false
          if (inChannels(row.channels, conn.channels)) {
            await sendPaced(conn, row.payload)
            count += 1
          }
          cursor = row.seq
          conn.replayCursor = cursor
          if (conn.closed) break
        }
        replayed.inc(count)
      }
      if (conn.closed) return
      if (publisher.lastSeq === target) {
        conn.catchingUp = false
        conn.replayCursor = undefined
        hub.join(conn)
        return
      }
      target = publisher.lastSeq
    }
  }

  /**
   * `snapshot=latest`: the connection message, then the latest values of the sensors its channels
   * cover with the seq N they are as of (read in one consistent view), then every event after N,
   * exactly as a resume from since=N goes on.
   */
  const startFromSnapshot = async (conn: Conn, channel: string, read: SnapshotReader) => {
    greet(conn, channel)
    const { seq, data } = await read(snapshotCoverage(conn.channels))
    conn.replayCursor = seq
    if (conn.closed) return
    await sendPaced(conn, `{"type":"snapshot","seq":${seq},"data":${data}}`)
    control.inc()
    // N may be committed but not yet published here (another instance's, not yet over Redis): the
    // stream goes on from N, so this instance first publishes up to it from the log.
    while (publisher.lastSeq < seq && !conn.closed && !stopping()) {
      await publisher.catchUp()
      if (publisher.lastSeq < seq) await Bun.sleep(20)
    }
    await follow(conn, seq, publisher.lastSeq, undefined, false)
  }

  return { resume, startFromSnapshot }
}
