// What happens on a WebSocket: admission, the connection message, client actions, liveness (the replay
// from `since` or a snapshot is replay.ts).
import type { Config } from '../config'
import type { Database } from '../db'
import { isUnavailable } from '../db/errors'
import type { Logger } from '../lib/logger'
import type { Metrics } from '../lib/metrics'
import { iso } from '../lib/time'
import { CHANNEL_HELP, isChannel } from './channels'
import { errorMessage, type ConnectionMessage } from './envelope'
import type { Conn, Hub, Socket } from './hub'
import type { Publisher } from './publisher'
import { createReplay, HistoryGap, type SnapshotReader } from './replay'

export type { SnapshotReader }

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
  const sent = { control: metrics.wsMessagesSent.labels('control') }
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

  const greet = (
    conn: Conn,
    channel: string,
    extra?: { recovered: boolean; oldest_seq: number },
  ) => {
    reply(conn, { ...connectionMessage(conn, 'connected', channel), ...extra })
    const greeted = conn.greeting
    conn.greeting = undefined
    greeted?.resolve()
  }
  const { resume, startFromSnapshot } = createReplay({
    db,
    hub,
    publisher,
    metrics,
    epoch: deps.epoch,
    limit,
    compress,
    greet,
    stopping: () => stopping,
  })

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
