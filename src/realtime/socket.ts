// What happens on a WebSocket: admission, the connection message, replay from `since`, client actions, liveness.
import type { Config } from '../config'
import type { Database } from '../db'
import type { Logger } from '../lib/logger'
import type { Metrics } from '../lib/metrics'
import { iso } from '../lib/time'
import { CHANNEL_HELP, isChannel } from './channels'
import { errorMessage, type ConnectionMessage } from './envelope'
import { inChannels, oldestSeq, readRange } from './event-log'
import type { Conn, Hub, Socket } from './hub'
import type { Publisher } from './publisher'

export const CLOSE = {
  shutdown: 1001,
  policy: 1008,
  tooLarge: 1009,
  full: 1013,
  badQuery: 4400,
  unauthorized: 4401,
  forbidden: 4403,
} as const

const REPLAY_PAGE = 1000

export interface SocketDeps {
  config: Readonly<Config>
  db: Database
  hub: Hub
  publisher: Publisher
  metrics: Metrics
  log: Logger
  epoch: string
}

export interface Admission {
  channels: string[]
  userId?: string
  role?: string
  /** Channels this user may join; undefined = all. */
  allowed?: (channel: string) => boolean
  tokenExpiresAt?: number
}

export interface HandshakeQuery {
  channel?: string
  user_id?: string
  since?: string
  epoch?: string
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

  const send = (conn: Conn, frame: string) => {
    if (!conn.closed) conn.ws.send(frame)
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
    metrics.wsDropped.inc({ reason: label })
    const ws = conn.ws
    if (code === 0) return ws.terminate()
    ws.close(code, reason)
    // A peer that reads nothing never completes the closing handshake; cut it after a grace period.
    setTimeout(() => ws.readyState !== 3 && ws.terminate(), 5000).unref()
  }

  /** Sends a frame during replay, waiting for the socket to drain instead of letting Bun drop it. */
  const sendInOrder = async (conn: Conn, frame: string) => {
    if (conn.closed) return
    const status = conn.ws.send(frame)
    if (status === -1 && conn.ws.getBufferedAmount() > config.ws.backpressureLimit / 2)
      await new Promise<void>((resolve) => (conn.drained = resolve))
    conn.drained = undefined
  }

  /**
   * Sends the connection message, then every missed event of the connection's channels, then joins
   * the live topic. Replay reads only up to what the publisher has already sent out; the loop ends
   * in a synchronous check-and-join, so nothing can slip between the last replayed and first live event.
   */
  const resume = async (conn: Conn, since: number, epoch: string | undefined, channel: string) => {
    const oldest = (await oldestSeq(db.read)) ?? publisher.lastSeq + 1
    const sameHistory = epoch === undefined || epoch === deps.epoch
    const recovered = sameHistory && since <= publisher.lastSeq && since >= oldest - 1
    reply(conn, {
      ...connectionMessage(conn, 'connected', channel),
      recovered,
      oldest_seq: oldest,
    })
    let cursor = sameHistory ? Math.max(since, oldest - 1) : publisher.lastSeq
    let replayed = 0
    for (;;) {
      const target = publisher.lastSeq
      while (cursor < target && !conn.closed) {
        const rows = await readRange(db.read, cursor, target, REPLAY_PAGE)
        if (rows.length === 0) break
        for (const row of rows) {
          if (!inChannels(row.channels, conn.channels)) continue
          await sendInOrder(conn, row.payload)
          replayed += 1
        }
        cursor = rows[rows.length - 1]!.seq
      }
      cursor = target
      if (conn.closed) return
      if (publisher.lastSeq === target) {
        conn.catchingUp = false
        hub.join(conn)
        metrics.wsMessagesSent.inc({ kind: 'replay' }, replayed)
        return
      }
    }
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
    const ip = ws.remoteAddress
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
    if (query.since !== undefined && !/^\d{1,15}$/.test(query.since)) {
      refuse(ws, CLOSE.badQuery, 'since must be the integer seq of the last event you received')
      return false
    }
    const conn = hub.add(ws, ip, admission.userId, admission.channels, admission.role)
    conn.tokenExpiresAt = admission.tokenExpiresAt
    conn.tokens = config.ws.messagesPerSecond * 2
    byWs.set(ws, conn)
    metrics.wsConnections.set(hub.size)
    metrics.wsConnectionsTotal.inc()
    const channel = admission.channels.join(',')
    if (query.since === undefined) {
      reply(conn, connectionMessage(conn, 'connected', channel))
      hub.join(conn)
      return true
    }
    conn.catchingUp = true
    resume(conn, Number(query.since), query.epoch, channel).catch((error) => {
      log.error('replay failed', { conn: conn.id, error: String(error) })
      drop(conn, 1011, 'Replay failed; reconnect with the same since', 'replay_error')
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

  const message = (ws: Socket, data: unknown, allowed?: (channel: string) => boolean) => {
    const conn = byWs.get(ws)
    if (!conn || conn.closed) return
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
          'Messages must be JSON objects with an "action": subscribe, unsubscribe or ping.',
        ),
      )
    const { action, channel } = data as { action?: unknown; channel?: unknown }
    if (action === 'ping') return reply(conn, { type: 'pong', timestamp: iso(now) })
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
        `Unknown action ${JSON.stringify(action ?? null).slice(0, 60)}; use subscribe, unsubscribe or ping.`,
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
      if (!conn.catchingUp && conn.ws.getBufferedAmount() >= config.ws.backpressureLimit) {
        drop(
          conn,
          CLOSE.policy,
          'Too slow: your unread buffer is full; reconnect with since',
          'slow',
        )
        continue
      }
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
    for (const conn of [...hub.conns.values()]) {
      if (notice && (conn.catchingUp || !conn.channels.has('general'))) conn.ws.send(notice)
      hub.remove(conn)
      conn.ws.close(CLOSE.shutdown, reason)
    }
    metrics.wsConnections.set(0)
  }

  return { open, message, close, alive, drain, sweep, closeAll, refuse, byWs }
}

export type SocketLayer = ReturnType<typeof createSocketLayer>
