// The registry of open WebSockets: their channels, the pub/sub topics they sit on, stats and limits.
import type { ServerWebSocket } from 'bun'
import { iso } from '../lib/time'

export type Socket = ServerWebSocket<unknown>

export interface Conn {
  id: number
  ws: Socket
  ip: string
  userId: string | undefined
  role: string | undefined
  connectedAt: number
  channels: Set<string>
  /** The Bun topic this connection is subscribed to (one per distinct channel set). */
  topic: string | undefined
  /** Set while replaying missed events; the connection joins its topic once caught up. */
  catchingUp: boolean
  /** While replaying: the last seq handed to the client (retention keeps everything after it). */
  replayCursor: number | undefined
  /** Until the connection message is out, client messages wait on this (so replies come after it). */
  greeting: PromiseWithResolvers<void> | undefined
  closed: boolean
  lastSeen: number
  pingSentAt: number | undefined
  tokens: number
  tokensAt: number
  drained: (() => void) | undefined
  tokenExpiresAt: number | undefined
  /** True once the token this connection joined with (or refreshed to) is revoked. */
  revoked: (() => boolean) | undefined
}

interface Topic {
  channels: string[]
  conns: Set<Conn>
}

export interface UserStat {
  user_id: string
  connected_at: string
}

export interface ChannelStats {
  connections: number
  users: UserStat[]
}

/**
 * The stats answer is bounded whatever the clients do: at most STATS_MAX_CHANNELS channels (those
 * with the most connections) and STATS_MAX_USERS users listed per channel. Counts stay exact.
 */
export const STATS_MAX_CHANNELS = 500
export const STATS_MAX_USERS = 50

/** Keeps the STATS_MAX_CHANNELS busiest channels and STATS_MAX_USERS users of each; says if it cut. */
export function boundStats(channels: Record<string, ChannelStats>) {
  let truncated = false
  let entries = Object.entries(channels)
  if (entries.length > STATS_MAX_CHANNELS) {
    truncated = true
    entries = entries
      .sort(([, a], [, b]) => b.connections - a.connections)
      .slice(0, STATS_MAX_CHANNELS)
  }
  for (const [, stats] of entries)
    if (stats.users.length > STATS_MAX_USERS) {
      truncated = true
      stats.users = stats.users.slice(0, STATS_MAX_USERS)
    }
  return { channels: Object.fromEntries(entries), truncated }
}

/** Where an event on one channel set goes: the topics to publish it to, and the sockets they hold. */
export interface Route {
  readonly topics: readonly string[]
  readonly reached: number
}

/** Channel sets whose route is kept at once (a fleet's sensors each have a few). */
const ROUTES_MAX = 50_000

/**
 * A connection sits on exactly one Bun topic named after its whole channel set, so an event that
 * goes to several of its channels still reaches it once; the publisher publishes an event to every
 * topic whose set meets the event's channels.
 */
export class Hub {
  readonly conns = new Map<number, Conn>()
  private readonly topics = new Map<string, Topic>()
  private readonly topicsByChannel = new Map<string, Set<string>>()
  /** topicsFor()'s answers by encoded channel set, dropped whenever a topic gains or loses a socket. */
  private readonly routes = new Map<string, Route>()
  private readonly perIp = new Map<string, number>()
  private nextId = 1

  get size() {
    return this.conns.size
  }

  connectionsFrom(ip: string) {
    return this.perIp.get(ip) ?? 0
  }

  add(ws: Socket, ip: string, userId: string | undefined, channels: string[], role?: string): Conn {
    const now = Date.now()
    const conn: Conn = {
      id: this.nextId++,
      ws,
      ip,
      userId,
      role,
      connectedAt: now,
      channels: new Set(channels),
      topic: undefined,
      catchingUp: false,
      replayCursor: undefined,
      greeting: undefined,
      closed: false,
      lastSeen: now,
      pingSentAt: undefined,
      tokens: 0,
      tokensAt: now,
      drained: undefined,
      tokenExpiresAt: undefined,
      revoked: undefined,
    }
    this.conns.set(conn.id, conn)
    this.perIp.set(ip, this.connectionsFrom(ip) + 1)
    return conn
  }

  /** Forgets a connection at once (stats and limits free its place); safe to call twice. */
  remove(conn: Conn) {
    if (conn.closed) return
    conn.closed = true
    this.leaveTopic(conn)
    this.conns.delete(conn.id)
    const left = this.connectionsFrom(conn.ip) - 1
    if (left > 0) this.perIp.set(conn.ip, left)
    else this.perIp.delete(conn.ip)
    conn.drained?.()
  }

  /** Puts the connection on the topic of its current channel set (no-op while it catches up). */
  join(conn: Conn) {
    if (conn.closed || conn.catchingUp) return
    const channels = [...conn.channels].sort()
    const topic = channels.length === 0 ? undefined : channels.join(',')
    if (topic === conn.topic) return
    this.leaveTopic(conn)
    if (!topic) return
    let entry = this.topics.get(topic)
    if (!entry) {
      entry = { channels, conns: new Set() }
      this.topics.set(topic, entry)
      for (const channel of channels) {
        let set = this.topicsByChannel.get(channel)
        if (!set) this.topicsByChannel.set(channel, (set = new Set()))
        set.add(topic)
      }
    }
    entry.conns.add(conn)
    this.routes.clear()
    conn.topic = topic
    conn.ws.subscribe(topic)
  }

  private leaveTopic(conn: Conn) {
    const topic = conn.topic
    if (!topic) return
    conn.topic = undefined
    if (conn.ws.readyState === 1) conn.ws.unsubscribe(topic)
    const entry = this.topics.get(topic)
    if (!entry) return
    entry.conns.delete(conn)
    this.routes.clear()
    if (entry.conns.size > 0) return
    this.topics.delete(topic)
    for (const channel of entry.channels) {
      const set = this.topicsByChannel.get(channel)
      set?.delete(topic)
      if (set?.size === 0) this.topicsByChannel.delete(channel)
    }
  }

  /**
   * The topics an event on these channels must be published to, and how many sockets they reach.
   * Kept per channel set until a connection joins or leaves a topic: a fleet's events name a few
   * channel sets over and over (one per sensor), and working each out again was 2 % of a batch.
   */
  topicsFor(encodedChannels: string): Route {
    let route = this.routes.get(encodedChannels)
    if (route) return route
    const topics: string[] = []
    let reached = 0
    for (const channel of encodedChannels.trim().split(' ')) {
      const ofChannel = this.topicsByChannel.get(channel)
      if (!ofChannel) continue
      for (const topic of ofChannel) {
        if (topics.includes(topic)) continue
        topics.push(topic)
        reached += this.topics.get(topic)!.conns.size
      }
    }
    if (this.routes.size >= ROUTES_MAX) this.routes.clear()
    this.routes.set(encodedChannels, (route = { topics, reached }))
    return route
  }

  /** The connections sitting on a topic (a copy, safe to drop connections while iterating). */
  subscribersOf(topic: string): Conn[] {
    return [...(this.topics.get(topic)?.conns ?? [])]
  }

  /** The smallest replay cursor among connections catching up: retention keeps every seq above it. */
  replayFloor(): number {
    let floor = Infinity
    for (const conn of this.conns.values())
      if (conn.catchingUp && conn.replayCursor !== undefined && conn.replayCursor < floor)
        floor = conn.replayCursor
    return floor
  }

  channelStats(channel: string): ChannelStats & { truncated?: true } {
    const stats: ChannelStats = { connections: 0, users: [] }
    for (const conn of this.conns.values()) {
      if (!conn.channels.has(channel)) continue
      stats.connections += 1
      if (conn.userId && stats.users.length <= STATS_MAX_USERS)
        stats.users.push({ user_id: conn.userId, connected_at: iso(conn.connectedAt) })
    }
    const { truncated } = boundStats({ [channel]: stats })
    return truncated ? { ...stats, truncated } : stats
  }

  /** Per channel: connections and (some of) their users; `truncated` when the lists were cut. */
  stats() {
    const channels: Record<string, ChannelStats> = {}
    for (const conn of this.conns.values()) {
      for (const channel of conn.channels) {
        const entry = (channels[channel] ??= { connections: 0, users: [] })
        entry.connections += 1
        // One past the cap, so boundStats knows the list was cut.
        if (conn.userId && entry.users.length <= STATS_MAX_USERS)
          entry.users.push({ user_id: conn.userId, connected_at: iso(conn.connectedAt) })
      }
    }
    const bounded = boundStats(channels)
    return {
      total_channels: Object.keys(channels).length,
      total_connections: this.conns.size,
      channels: bounded.channels,
      ...(bounded.truncated ? { truncated: true as const } : {}),
    }
  }
}
