// The deployment around this instance: committed frames to and from the other instances over Redis
// (ioredis), each instance's stats in Redis with a TTL, and the log polling that covers Redis outages.
// Without REDIS_URL the deployment is this instance alone.
import Redis from 'ioredis'
import { Counter, Gauge } from 'prom-client'
import type { Config } from '../config'
import type { Logger } from '../lib/logger'
import type { Metrics } from '../lib/metrics'
import { iso } from '../lib/time'
import { boundStats, type ChannelStats, type Hub } from './hub'
import type { Frame, Publisher } from './publisher'

export interface InstanceStats {
  id: string
  started_at: string
  updated_at: string
  connections: number
  channels: Record<string, ChannelStats>
  last_seq: number
  events_emitted: number
  messages_sent: number
  pubsub: 'ok' | 'down'
  /** Set when this instance's channel list was cut (see hub.boundStats). */
  truncated?: true
}

export interface DeploymentStats {
  /** Instances that reported in the last STATS_TTL_MS (this one included). */
  instances: number
  /** False when Redis could not be read: the figures then cover this instance only. */
  complete: boolean
  total_channels: number
  total_connections: number
  events_emitted: number
  messages_sent: number
  channels: Record<string, ChannelStats>
  /** True when channels or users were left out to keep the answer bounded (see hub.boundStats). */
  truncated?: true
  members: { id: string; connections: number; last_seq: number; updated_at: string }[]
}

export interface Cluster {
  readonly instanceId: string
  readonly mode: 'redis' | 'in-process'
  /** False while Redis is unreachable (events from other instances then come from the log). */
  readonly healthy: boolean
  /** Hands this instance's committed frames to the other instances. */
  broadcast(frames: readonly Frame[]): void
  instance(): Promise<InstanceStats>
  deployment(): Promise<DeploymentStats>
  start(): Promise<void>
  stop(): Promise<void>
}

/** While Redis is away (or absent, on a shared PostgreSQL) the log is read every tick. */
const TICK_MS = 250
/** While Redis is up the log is still read now and then: Redis pub/sub may drop a message. */
const SAFETY_POLL_TICKS = 20
const STATS_TICKS = 4
const STATS_REFRESH_MS = 5000
const STATS_TTL_MS = 15_000
const SUBSCRIBE_WAIT_MS = 3000

/**
 * Frames on the wire: the epoch of the event history, then "seq\nchannels\npayload" per event, all
 * joined by "\n" (JSON has no raw newline). A deployment pointed at this Redis by mistake (another
 * database, the same prefix) has another epoch, and its frames are ignored.
 */
export function encodeFrames(epoch: string, frames: readonly Frame[]): string {
  return [epoch, ...frames.map((f) => `${f.seq}\n${f.channels}\n${f.payload}`)].join('\n')
}

export function decodeFrames(message: string): { epoch: string; frames: Frame[] } {
  const [epoch, ...lines] = message.split('\n')
  if (!epoch || lines.length === 0 || lines.length % 3 !== 0)
    throw new Error('malformed frame batch')
  const frames: Frame[] = []
  for (let i = 0; i < lines.length; i += 3) {
    const seq = Number(lines[i])
    if (!Number.isSafeInteger(seq) || seq < 1) throw new Error('malformed frame seq')
    frames.push({ seq, channels: lines[i + 1]!, payload: lines[i + 2]! })
  }
  return { epoch, frames }
}

const NEWLINE = 10

/**
 * The epoch and the last frame's seq of an encoded batch, read from its two ends without decoding the
 * rest; undefined when it is not shaped as encodeFrames makes it.
 */
export function batchEnds(message: Buffer): { epoch: string; lastSeq: number } | undefined {
  const first = message.indexOf(NEWLINE)
  // A batch's seqs ascend (one commit's, in order): its last frame holds its highest.
  const beforePayload = message.lastIndexOf(NEWLINE)
  const beforeChannels = beforePayload > 0 ? message.lastIndexOf(NEWLINE, beforePayload - 1) : -1
  const beforeSeq = beforeChannels > 0 ? message.lastIndexOf(NEWLINE, beforeChannels - 1) : -1
  if (first < 0 || beforeSeq < first || beforeChannels - beforeSeq < 2) return undefined
  const lastSeq = Number(message.toString('latin1', beforeSeq + 1, beforeChannels))
  if (!Number.isSafeInteger(lastSeq) || lastSeq < 1) return undefined
  return { epoch: message.toString('latin1', 0, first), lastSeq }
}

export interface ClusterDeps {
  config: Readonly<Config>
  log: Logger
  metrics: Metrics
  hub: Hub
  publisher: Publisher
  /** Names the event history; frames of another history are ignored. */
  epoch: string
  /** Whether other writers can add to the log (a shared PostgreSQL): then it is polled too. */
  sharedLog: boolean
}

export function createCluster(deps: ClusterDeps): Cluster {
  const { config, log, metrics, hub, publisher } = deps
  const instanceId = config.instanceId
  const startedAt = Date.now()
  const redisUrl = config.redisUrl
  const prefix = config.redisPrefix
  const eventsChannel = `${prefix}:events`
  const instanceKey = (id: string) => `${prefix}:instance:${id}`

  const sum = async (counter: { get(): Promise<{ values: { value: number }[] }> }) =>
    (await counter.get()).values.reduce((total, v) => total + v.value, 0)

  let healthy = !redisUrl
  let stopping = false
  const instance = async (): Promise<InstanceStats> => {
    const { total_connections, channels, truncated } = hub.stats()
    return {
      ...(truncated ? { truncated } : {}),
      id: instanceId,
      started_at: iso(startedAt),
      updated_at: iso(Date.now()),
      connections: total_connections,
      channels,
      last_seq: publisher.lastSeq,
      events_emitted: await sum(metrics.eventsEmitted),
      messages_sent: await sum(metrics.wsMessagesSent),
      pubsub: healthy ? 'ok' : 'down',
    }
  }

  let pub: Redis | undefined
  let sub: Redis | undefined
  const timers: Timer[] = []
  let ticks = 0
  let lastStats = ''
  let lastStatsAt = 0

  const catchUp = () =>
    publisher
      .catchUp()
      .catch((error) => log.debug('event log poll failed', { error: String(error) }))

  const down = (reason: string) => {
    if (!healthy || stopping) return
    healthy = false
    log.warn(
      'Redis unreachable: serving this instance’s subscribers, reading other instances’ events from the event log, reconnecting with backoff',
      { reason },
    )
  }

  const subscribe = async () => {
    await sub!.subscribe(eventsChannel)
    // Subscribed: anything published from now on arrives; anything earlier is already in the log.
    if (!healthy) log.info('Redis reachable again; catching up from the event log')
    healthy = true
    await catchUp()
  }

  const readOthers = async (): Promise<InstanceStats[] | undefined> => {
    if (!pub || !healthy) return undefined
    try {
      const keys: string[] = []
      let cursor = '0'
      do {
        const [next, found] = await pub.scan(cursor, 'MATCH', instanceKey('*'), 'COUNT', 200)
        cursor = next
        keys.push(...found)
      } while (cursor !== '0')
      const mine = instanceKey(instanceId)
      const others = keys.filter((k) => k !== mine)
      if (others.length === 0) return []
      const values = await pub.mget(...others)
      return values.flatMap((v) => (v ? [JSON.parse(v) as InstanceStats] : []))
    } catch (error) {
      log.debug('reading deployment stats failed', { error: String(error) })
      return undefined
    }
  }

  const deployment = async (): Promise<DeploymentStats> => {
    const self = await instance()
    const others = redisUrl ? await readOthers() : []
    const all = [self, ...(others ?? [])]
    const channels: Record<string, ChannelStats> = {}
    for (const member of all)
      for (const [name, stats] of Object.entries(member.channels)) {
        const entry = (channels[name] ??= { connections: 0, users: [] })
        entry.connections += stats.connections
        entry.users.push(...stats.users)
      }
    const bounded = boundStats(channels)
    return {
      instances: all.length,
      complete: others !== undefined,
      total_channels: Object.keys(channels).length,
      total_connections: all.reduce((n, m) => n + m.connections, 0),
      events_emitted: all.reduce((n, m) => n + m.events_emitted, 0),
      messages_sent: all.reduce((n, m) => n + m.messages_sent, 0),
      channels: bounded.channels,
      ...(bounded.truncated || all.some((m) => m.truncated) ? { truncated: true as const } : {}),
      members: all.map((m) => ({
        id: m.id,
        connections: m.connections,
        last_seq: m.last_seq,
        updated_at: m.updated_at,
      })),
    }
  }

  /** Writes this instance's stats when they changed, and at least every STATS_REFRESH_MS (TTL). */
  const reportStats = async () => {
    if (!pub || !healthy) return
    const { updated_at: _, ...figures } = await instance()
    const text = JSON.stringify(figures)
    const now = Date.now()
    if (text === lastStats && now - lastStatsAt < STATS_REFRESH_MS) return
    lastStats = text
    lastStatsAt = now
    await pub
      .set(
        instanceKey(instanceId),
        JSON.stringify({ ...figures, updated_at: iso(now) }),
        'PX',
        STATS_TTL_MS,
      )
      .catch(() => (lastStats = ''))
  }

  const tick = () => {
    ticks += 1
    if ((redisUrl || deps.sharedLog) && (!healthy || ticks % SAFETY_POLL_TICKS === 0)) catchUp()
    if (ticks % STATS_TICKS === 0) reportStats().catch(() => undefined)
  }

  registerMetrics(metrics, instanceId, redisUrl ? 'redis' : 'in-process', () => healthy, deployment)

  return {
    instanceId,
    mode: redisUrl ? 'redis' : 'in-process',
    get healthy() {
      return healthy
    },
    broadcast(frames) {
      if (!pub || frames.length === 0) return
      // Not queued while Redis is away: the other instances read these from the log when it is back.
      pub.publish(eventsChannel, encodeFrames(deps.epoch, frames)).catch(() => undefined)
    },
    instance,
    deployment,
    async start() {
      if (redisUrl) {
        // Reconnect forever, backing off to 5 s, with jitter so instances do not reconnect in step.
        const retryStrategy = (times: number) =>
          Math.min(100 * 2 ** Math.min(times, 6), 5000) + Math.floor(Math.random() * 250)
        const options = { lazyConnect: true, retryStrategy, connectTimeout: 3000 }
        // Stats reads must not hang a request on a Redis that accepts connections but does not answer.
        pub = new Redis(redisUrl, {
          ...options,
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          commandTimeout: 1000,
        })
        sub = new Redis(redisUrl, { ...options, autoResubscribe: false })
        pub.on('error', () => undefined)
        sub.on('error', (error) => down(error.message))
        sub.on('close', () => down('connection closed'))
        let foreign = false
        sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
          // Redis hands every instance its own batches back, and a batch may come after the log filled
          // its gap: one that holds nothing past what this instance has published is dropped unread.
          const ends = batchEnds(message)
          if (ends?.epoch === deps.epoch && ends.lastSeq <= publisher.lastSeq) return
          let decoded
          try {
            decoded = decodeFrames(message.toString())
          } catch (error) {
            log.warn('ignored a malformed event message from Redis', { error: String(error) })
            return
          }
          if (decoded.epoch === deps.epoch) return publisher.publish(decoded.frames)
          if (!foreign)
            log.warn(
              `ignoring events of another event history on ${eventsChannel}: give each deployment its own REDIS_PREFIX`,
            )
          foreign = true
        })
        healthy = true
        let subscribed: () => void = () => undefined
        const first = new Promise<void>((resolve) => (subscribed = resolve))
        sub.on('ready', () => {
          subscribe().then(subscribed, (error) => down(String(error)))
        })
        pub.connect().catch(() => undefined)
        sub.connect().catch(() => undefined)
        await Promise.race([first, Bun.sleep(SUBSCRIBE_WAIT_MS)])
        if (sub.status !== 'ready') down('not reachable at start')
        await reportStats()
      } else if (deps.sharedLog) await catchUp()
      const timer = setInterval(tick, TICK_MS)
      timer.unref()
      timers.push(timer)
    },
    async stop() {
      stopping = true
      for (const timer of timers.splice(0)) clearInterval(timer)
      if (pub && healthy)
        await Promise.race([
          pub.del(instanceKey(instanceId)).catch(() => undefined),
          Bun.sleep(500),
        ])
      pub?.disconnect()
      sub?.disconnect()
    },
  }
}

/** Series read at scrape time: who this instance is, whether Redis is up, the deployment's totals. */
function registerMetrics(
  metrics: Metrics,
  instanceId: string,
  mode: string,
  healthy: () => boolean,
  deployment: () => Promise<DeploymentStats>,
) {
  const registers = [metrics.registry]
  // One Redis read per scrape, shared by the deployment gauges.
  let cached: { at: number; stats: Promise<DeploymentStats> } | undefined
  const read = () => {
    if (!cached || Date.now() - cached.at > 500) cached = { at: Date.now(), stats: deployment() }
    return cached.stats
  }
  new Gauge({
    name: 'vigia_instance_info',
    help: 'This instance: its id and how it reaches the other instances',
    labelNames: ['instance', 'pubsub'] as const,
    registers,
    collect() {
      this.set({ instance: instanceId, pubsub: mode }, 1)
    },
  })
  new Gauge({
    name: 'vigia_pubsub_up',
    help: '1 while the cross-instance pub/sub (Redis) is reachable, or when there is none',
    registers,
    collect() {
      this.set(healthy() ? 1 : 0)
    },
  })
  const deploymentGauge = (name: string, help: string, pick: (d: DeploymentStats) => number) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        this.set(pick(await read()))
      },
    })
  deploymentGauge('vigia_deployment_instances', 'Instances in the deployment', (d) => d.instances)
  deploymentGauge(
    'vigia_deployment_ws_connections',
    'Open WebSocket connections across the deployment',
    (d) => d.total_connections,
  )
  // Running totals are counters: each instance's count only grows (a restart resets it, as counters may).
  const deploymentCounter = (name: string, help: string, pick: (d: DeploymentStats) => number) =>
    new Counter({
      name,
      help,
      registers,
      async collect() {
        this.reset()
        this.inc(pick(await read()))
      },
    })
  deploymentCounter(
    'vigia_deployment_events_emitted_total',
    'Events emitted by all instances since they started',
    (d) => d.events_emitted,
  )
  deploymentCounter(
    'vigia_deployment_ws_messages_sent_total',
    'Event frames delivered to WebSocket clients by all instances since they started',
    (d) => d.messages_sent,
  )
}
