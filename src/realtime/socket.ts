// What happens on a WebSocket: admission, the connection message, replay from `since`, client actions, liveness.
import type { Config } from '../config'
import type { Database } from '../db'
import { isUnavailable } from '../db/errors'
import type { Logger } from '../lib/logger'
import type { Metrics } from '../lib/metrics'
import { iso } from '../lib/time'
import { CHANNEL_HELP, isChannel, snapshotCoverage, type SnapshotCoverage } from './channels'
import { errorMessage, type ConnectionMessage } from './envelope'
import { inChannels, oldestSeq, readRange, type LogRow } from './event-log'
import type { Conn, Hub, Socket } from './hub'
import type { Publisher } from './publisher'

export const CLOSE = {
  shutdown: 1001,
  policy: 1008,
  tooLarge: 1009,
  internal: 1011,
  full: 1013,
  badQuery: 4400,
  unauthorized: 4401,
  forbidden: 4403,
} as const

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
class HistoryGap extends Error {
  constructor(readonly after: number) {
    super(`event log has no seq ${after + 1}`)
  }
}

/** The latest values of the covered sensors (a JSON array, as text) and the seq of the last event they include. */
export type SnapshotReader = (coverage: SnapshotCoverage) => Promise<{ seq: number; data: string }>

export interface SocketDeps {
  config: Readonly<Config>
  db: Database
  hub: Hub
  publisher: Publisher
  metrics: Metrics
  log: Logger
  epoch: string
  /** Reads what `snapshot=latest` sends; without it that query is refused. */
  snapshot?: SnapshotReader
}

export interface Admission {
  channels: string[]
  userId?: string
  role?: string
  /** Channels this user may join; undefined = all. */
  allowed?: (channel: string) => boolean
  tokenExpiresAt?: number
  /** True once the connection's token is revoked (logout, password change): it is then closed 4401. */
  revoked?: () => boolean
  /** The client's address for the per-IP cap; the socket peer when not given. */
  ip?: string
  /** Checks a newer token of the same user (action `refresh`); resolves, never rejects. */
  refresh?: (
    token: string,
    held: string[],
  ) => Promise<{ expiresAt: number } | { code: string; message: string }>
}

export interface HandshakeQuery {
  channel?: string
  user_id?: string
  since?: string
  epoch?: string
  snapshot?: string
}

/** Splits `channel=a,b` and checks every name; the error is the close reason (at most 123 bytes). */
export function parseChannels(
  param: string | undefined,
): { channels: string[] } | { error: string } {
  const names = (param ?? 'general')
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean)
  if (names.length === 0) return { channels: ['general'] }
  for (const name of names)
    if (!isChannel(name))
      return {
        error: `Unknown channel "${name.slice(0, 30)}": use general|sensors|readings|locations|anomalies|predictions[:id]`,
      }
  return { channels: [...new Set(names)] }
}

export function createSocketLayer(deps: SocketDeps) {
  const { config, db, hub, publisher, metrics, log } = deps
  const byWs = new WeakMap<Socket, Conn>()

  const limit = config.ws.backpressureLimit
  /** WEBSOCKET_COMPRESSION: permessage-deflate for the clients that negotiated it. */
  const compress = config.ws.compression
  let stopping = false
  const sent = {
    control: metrics.wsMessagesSent.labels('control'),
    replay: metrics.wsMessagesSent.labels('replay'),
  }
  const dropped = (reason: string) => metrics.wsDropped.labels(reason)
  for (const reason of ['slow', 'flood', 'ping_timeout']) dropped(reason).inc(0)

  /** Closes a live connection whose unsent buffer reached the limit: 1008, counted as slow. */
  const checkBuffer = (conn: Conn) => {
    if (!conn.closed && !conn.catchingUp && conn.ws.getBufferedAmount() >= limit)
      drop(conn, CLOSE.policy, 'Too slow: your unread buffer is full; reconnect with since', 'slow')
  }

  /** After a publish reported backpressure on `topic`: closes its subscribers that reached the limit. */
  const checkTopic = (topic: string) => {
    for (const conn of hub.subscribersOf(topic)) checkBuffer(conn)
  }

  const send = (conn: Conn, frame: string) => {
    if (conn.closed) return
    if (conn.ws.send(frame, compress) <= 0) checkBuffer(conn)
    sent.control.inc()
  }
  const reply = (conn: Conn, message: ConnectionMessage | { type: 'pong'; timestamp: string }) =>
    send(conn, JSON.stringify(message))
  const refuse = (ws: Socket, code: number, reason: string) => {
    metrics.wsRejected.inc({ code: String(code) })
    ws.close(code, reason)
  }

  /** Drops a connection now (stats free its place at once) and closes the socket with `code`. */
  const drop = (conn: Conn, code: number, reason: string, label: string) => {
    if (conn.closed) return
    hub.remove(conn)
    metrics.wsConnections.set(hub.size)
    dropped(label).inc()
    const ws = conn.ws
    if (code === 0) return ws.terminate()
    ws.close(code, reason)
    // A peer that reads nothing never completes the closing handshake; cut it after a grace period.
    setTimeout(() => ws.readyState !== 3 && ws.terminate(), 5000).unref()
  }

  /**
   * Sends a replayed frame, then waits while the client's unsent buffer is over half the limit, so a
   * replay never grows the buffer past it and Bun never has a reason to drop a frame.
   */
  const sendPaced = async (conn: Conn, frame: string) => {
    conn.ws.send(frame, compress)
    let paused = false
    while (!conn.closed && conn.ws.getBufferedAmount() > limit / 2) {
      if (!paused) metrics.wsReplayPauses.inc()
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
    reply(conn, { ...connectionMessage(conn, 'connected', channel), recovered, oldest_seq: oldest })
    const greeted = conn.greeting
    conn.greeting = undefined
    greeted?.resolve()

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
        sent.replay.inc(count)
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
    reply(conn, connectionMessage(conn, 'connected', channel))
    const greeted = conn.greeting
    conn.greeting = undefined
    greeted?.resolve()
    const { seq, data } = await read(snapshotCoverage(conn.channels))
    conn.replayCursor = seq
    if (conn.closed) return
    await sendPaced(conn, `{"type":"snapshot","seq":${seq},"data":${data}}`)
    sent.control.inc()
    // N may be committed but not yet published here (another instance's, not yet over Redis): the
    // stream goes on from N, so this instance first publishes up to it from the log.
    while (publisher.lastSeq < seq && !conn.closed && !stopping) {
      await publisher.catchUp()
      if (publisher.lastSeq < seq) await Bun.sleep(20)
    }
    await follow(conn, seq, publisher.lastSeq, undefined, false)
  }

  const connectionMessage = (
    conn: Conn,
    status: ConnectionMessage['status'],
    channel: string,
  ): ConnectionMessage => ({
    type: 'connection',
    status,
    channel,
    timestamp: iso(Date.now()),
    channels: [...conn.channels],
    epoch: deps.epoch,
    last_seq: publisher.lastSeq,
  })

  /** Admits a socket whose handshake passed auth; returns false when it was closed instead. */
  const open = (ws: Socket, query: HandshakeQuery, admission: Admission): boolean => {
    const ip = admission.ip ?? ws.remoteAddress
    if (stopping) {
      ws.close(CLOSE.shutdown, 'Server shutting down')
      return false
    }
    if (hub.size >= config.ws.maxConnections) {
      refuse(ws, CLOSE.full, 'Server is at its WebSocket connection limit; retry later')
      return false
    }
    if (
      config.ws.maxConnectionsPerIp > 0 &&
      hub.connectionsFrom(ip) >= config.ws.maxConnectionsPerIp
    ) {
      refuse(ws, CLOSE.full, 'Too many WebSocket connections from your address; retry later')
      return false
    }
    if (admission.channels.length > config.ws.maxChannels) {
      refuse(
        ws,
        CLOSE.badQuery,
        `Too many channels: at most ${config.ws.maxChannels} per connection (WEBSOCKET_MAX_CHANNELS)`,
      )
      return false
    }
    if (query.since !== undefined && !/^\d{1,15}$/.test(query.since)) {
      refuse(ws, CLOSE.badQuery, 'since must be the integer seq of the last event you received')
      return false
    }
    if (query.snapshot !== undefined && (query.snapshot !== 'latest' || !deps.snapshot)) {
      refuse(ws, CLOSE.badQuery, 'snapshot must be latest (snapshot=latest)')
      return false
    }
    if (query.snapshot !== undefined && query.since !== undefined) {
      refuse(ws, CLOSE.badQuery, 'Use since to resume or snapshot=latest to start over, not both')
      return false
    }
    const conn = hub.add(ws, ip, admission.userId, admission.channels, admission.role)
    conn.tokenExpiresAt = admission.tokenExpiresAt
    conn.revoked = admission.revoked
    conn.tokens = config.ws.messagesPerSecond * 2
    byWs.set(ws, conn)
    metrics.wsConnections.set(hub.size)
    metrics.wsConnectionsTotal.inc()
    const channel = admission.channels.join(',')
    if (query.since === undefined && query.snapshot === undefined) {
      reply(conn, connectionMessage(conn, 'connected', channel))
      hub.join(conn)
      return true
    }
    conn.catchingUp = true
    conn.greeting = Promise.withResolvers<void>()
    let started: Promise<void>
    if (query.snapshot !== undefined) {
      // Retention keeps everything after what is published now, and so everything after the snapshot.
      conn.replayCursor = publisher.lastSeq
      started = startFromSnapshot(conn, channel, deps.snapshot!)
    } else {
      const since = Number(query.since)
      conn.replayCursor = since
      started = resume(conn, since, query.epoch, channel)
    }
    started.catch((error) => {
      conn.greeting?.resolve()
      conn.greeting = undefined
      if (error instanceof HistoryGap) {
        log.warn('history pruned during a replay', { conn: conn.id, after: error.after })
        drop(
          conn,
          CLOSE.internal,
          `History moved; reconnect with since=${error.after}`,
          'replay_gap',
        )
        return
      }
      // The database away is an outage (logged where it is noticed), not a fault of this replay.
      if (isUnavailable(error)) log.debug('replay failed', { conn: conn.id, error: String(error) })
      else log.error('replay failed', { conn: conn.id, error: String(error) })
      const again = query.snapshot ? 'the same query' : 'the same since'
      drop(conn, CLOSE.internal, `Replay failed; reconnect with ${again}`, 'replay_error')
    })
    return true
  }

  /** Token bucket per connection: a burst of 2 s worth, then the configured rate; a flood is closed. */
  const withinRate = (conn: Conn, now: number): boolean => {
    const rate = config.ws.messagesPerSecond
    conn.tokens = Math.min(rate * 2, conn.tokens + ((now - conn.tokensAt) / 1000) * rate)
    conn.tokensAt = now
    conn.tokens -= 1
    if (conn.tokens >= 0) return true
    if (conn.tokens < -rate) {
      drop(conn, CLOSE.policy, 'Message flood: too many messages per second', 'flood')
      return false
    }
    if (conn.tokens >= -1)
      send(conn, errorMessage('rate_limited', `Slow down: at most ${rate} messages per second.`))
    return false
  }

  /** `{"action":"refresh","token":"…"}`: a newer token of the same user moves the expiry. */
  const refresh = (conn: Conn, token: unknown, admission: Admission | undefined) => {
    if (!admission?.refresh)
      return send(
        conn,
        errorMessage(
          'refresh_not_supported',
          'This connection has no token to refresh; authenticated sockets use /api/v1/ws/secure?token=.',
        ),
      )
    if (typeof token !== 'string' || token === '')
      return send(
        conn,
        errorMessage(
          'invalid_token',
          '"token" is required: a fresh access_token from POST /auth/login.',
        ),
      )
    admission
      .refresh(token, [...conn.channels])
      .catch(() => ({
        code: 'invalid_token',
        message: 'That token could not be checked; log in again.',
      }))
      .then((result) => {
        if (conn.closed) return
        if ('code' in result) return send(conn, errorMessage(result.code, result.message))
        conn.tokenExpiresAt = result.expiresAt
        reply(conn, {
          ...connectionMessage(conn, 'refreshed', [...conn.channels].join(',')),
          token_expires_at: iso(result.expiresAt),
        })
      })
  }

  const message = (ws: Socket, data: unknown, admission?: Admission): void => {
    const conn = byWs.get(ws)
    if (!conn || conn.closed) return
    if (conn.greeting) {
      conn.greeting.promise.then(() => message(ws, data, admission))
      return
    }
    const now = Date.now()
    conn.lastSeen = now
    metrics.wsMessagesReceived.inc()
    if (!withinRate(conn, now)) return
    if (typeof data === 'string')
      return send(
        conn,
        errorMessage(
          'invalid_json',
          'Messages must be JSON, such as {"action":"subscribe","channel":"sensors"}.',
        ),
      )
    // Binary frames arrive as Buffers: objects, but not messages.
    if (
      typeof data !== 'object' ||
      data === null ||
      Array.isArray(data) ||
      ArrayBuffer.isView(data)
    )
      return send(
        conn,
        errorMessage(
          'invalid_message',
          'Messages must be JSON objects with an "action": subscribe, unsubscribe, ping or refresh.',
        ),
      )
    const { action, channel } = data as { action?: unknown; channel?: unknown }
    if (action === 'ping') return reply(conn, { type: 'pong', timestamp: iso(now) })
    if (action === 'refresh') return refresh(conn, (data as { token?: unknown }).token, admission)
    const allowed = admission?.allowed
    if (action === 'subscribe' || action === 'unsubscribe') {
      if (typeof channel !== 'string' || !isChannel(channel))
        return send(
          conn,
          errorMessage(
            'unknown_channel',
            `${typeof channel === 'string' ? `Unknown channel "${channel.slice(0, 60)}"` : '"channel" is required'}. ${CHANNEL_HELP}`,
          ),
        )
      if (action === 'subscribe') {
        if (allowed && !allowed(channel))
          return send(
            conn,
            errorMessage('forbidden_channel', `You are not allowed to join "${channel}".`),
          )
        if (!conn.channels.has(channel) && conn.channels.size >= config.ws.maxChannels)
          return send(
            conn,
            errorMessage(
              'too_many_channels',
              `This connection holds ${conn.channels.size} channels, the most allowed (WEBSOCKET_MAX_CHANNELS); unsubscribe from one first.`,
            ),
          )
        conn.channels.add(channel)
      } else {
        if (!conn.channels.has(channel))
          return send(
            conn,
            errorMessage('not_subscribed', `This connection is not subscribed to "${channel}".`),
          )
        conn.channels.delete(channel)
      }
      hub.join(conn)
      return reply(
        conn,
        connectionMessage(conn, action === 'subscribe' ? 'subscribed' : 'unsubscribed', channel),
      )
    }
    send(
      conn,
      errorMessage(
        'unknown_action',
        `Unknown action ${JSON.stringify(action ?? null).slice(0, 60)}; use subscribe, unsubscribe, ping or refresh.`,
      ),
    )
  }

  const close = (ws: Socket) => {
    const conn = byWs.get(ws)
    if (!conn) return
    byWs.delete(ws)
    hub.remove(conn)
    metrics.wsConnections.set(hub.size)
  }

  const alive = (ws: Socket) => {
    const conn = byWs.get(ws)
    if (!conn) return
    conn.lastSeen = Date.now()
    conn.pingSentAt = undefined
  }

  const drain = (ws: Socket) => byWs.get(ws)?.drained?.()

  /** Closes with 4401 every connection whose token was revoked; run when revocations arrive. */
  const closeRevoked = () => {
    for (const conn of [...hub.conns.values()]) if (conn.revoked?.()) revokedClose(conn)
  }
  const revokedClose = (conn: Conn) => {
    send(
      conn,
      errorMessage(
        'token_revoked',
        'Your token was revoked (logout or password change); log in again.',
      ),
    )
    drop(conn, CLOSE.unauthorized, 'Token revoked', 'token_revoked')
  }

  /**
   * Once a second: ping connections silent for WEBSOCKET_PING_INTERVAL, drop those silent past
   * interval + timeout, and close with 1008 any whose unsent buffer reached the backpressure limit.
   */
  const sweep = () => {
    const now = Date.now()
    const interval = config.ws.pingInterval * 1000
    const deadline = interval + config.ws.pingTimeout * 1000
    for (const conn of hub.conns.values()) {
      if (conn.tokenExpiresAt !== undefined && now >= conn.tokenExpiresAt) {
        send(conn, errorMessage('token_expired', 'Your token expired; reconnect with a fresh one.'))
        drop(conn, CLOSE.unauthorized, 'Token expired', 'token_expired')
        continue
      }
      if (conn.revoked?.()) {
        revokedClose(conn)
        continue
      }
      checkBuffer(conn)
      if (conn.closed) continue
      const silent = now - conn.lastSeen
      if (silent >= deadline) drop(conn, 0, '', 'ping_timeout')
      else if (silent >= interval && conn.pingSentAt === undefined) {
        conn.pingSentAt = now
        conn.ws.ping()
      }
    }
  }

  /**
   * Closes every socket with 1001 (server shutting down). `notice` (the logged shutdown event, which
   * went to general) is also handed to connections that are not on general, so every client hears it.
   */
  const closeAll = (reason: string, notice?: string) => {
    stopping = true
    for (const conn of [...hub.conns.values()]) {
      if (notice && (conn.catchingUp || !conn.channels.has('general')))
        conn.ws.send(notice, compress)
      hub.remove(conn)
      conn.ws.close(CLOSE.shutdown, reason)
    }
    metrics.wsConnections.set(0)
  }

  return {
    open,
    message,
    close,
    alive,
    drain,
    sweep,
    closeAll,
    refuse,
    checkTopic,
    closeRevoked,
    byWs,
  }
}

export type SocketLayer = ReturnType<typeof createSocketLayer>
