// The environment, parsed once into a typed, frozen Config; the only module that reads process.env.
import { isIP } from 'node:net'
import { hostname } from 'node:os'

export class ConfigError extends Error {
  override name = 'ConfigError'
}

export type DatabaseConfig =
  { kind: 'sqlite'; path: string; url: string } | { kind: 'postgres'; url: string }

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
export type AuthMode = 'open' | 'required'
/** Under AUTH_MODE=required: REST reads open to anyone, or needing a valid token too. */
export type AuthReads = 'open' | 'token'

export interface MqttConfig {
  /** Unset: no MQTT ingestion. */
  url: string | undefined
  /** A topic filter whose first `+` level is the sensor id. */
  topic: string
  clientId: string
  autoRegister: boolean
  qos: 0 | 1
  /** Seconds the broker keeps the session (and queues QoS 1 messages) while the server is away. */
  sessionExpiry: number
}

/** Which addresses webhook deliveries may connect to: address classes and CIDR ranges. */
export interface WebhookAllow {
  classes: ('loopback' | 'private' | 'public')[]
  /** `[address, prefix length, family]` */
  ranges: [string, number, 'ipv4' | 'ipv6'][]
  /** As written, for messages. */
  text: string
}

export interface Config {
  nodeEnv: string
  port: number
  host: string
  database: DatabaseConfig
  redisUrl: string | undefined
  /** Key and channel prefix in Redis: deployments sharing one Redis use different prefixes. */
  redisPrefix: string
  /** This instance's name in the deployment's stats (INSTANCE_ID, default host name plus a random tag). */
  instanceId: string
  mqtt: MqttConfig
  jwt: { secret: string; secretGenerated: boolean; expiresIn: number }
  admin: { username: string; password: string | undefined }
  authMode: AuthMode
  authReads: AuthReads
  ws: {
    maxConnections: number
    maxConnectionsPerIp: number
    pingInterval: number
    pingTimeout: number
    maxMessageBytes: number
    backpressureLimit: number
    messagesPerSecond: number
    /** permessage-deflate on every frame sent, for clients that negotiate it. */
    compression: boolean
    /** Channels one connection may hold at once. */
    maxChannels: number
  }
  events: { retentionCount: number; retentionSeconds: number }
  corsOrigins: string[] | '*'
  logLevel: LogLevel
  bodyLimitBytes: number
  http: {
    /** Seconds a request may take to send its whole body once its headers are in. */
    bodyTimeout: number
    /** HTTP requests in progress at once from one client address; 0 = no cap. */
    maxRequestsPerIp: number
  }
  /** Login attempts allowed per window, per client address and per username. */
  login: { maxPerIp: number; maxPerUser: number; windowSeconds: number }
  /** Take the client address from the last X-Forwarded-For entry (set by a reverse proxy in front). */
  trustProxy: boolean
  webhooks: {
    allow: WebhookAllow
    timeoutMs: number
    /** A delivery is retried until at least this long after its first attempt, then given up. */
    retryForMs: number
    /** The first retry waits about this long; each next one twice as long, up to retryMaxMs. */
    retryBaseMs: number
    retryMaxMs: number
  }
  history: {
    /** READINGS_RETENTION in ms: raw readings older than this are deleted; undefined keeps them forever. */
    retentionMs: number | undefined
    /** Seconds between retention passes. */
    retentionInterval: number
    /** The most rows one aggregate query may answer (sensors × buckets in its range). */
    aggregateMaxRows: number
    /** false: no rollup worker (aggregates read raw rows only); for measuring what rollups cost. */
    rollups: boolean
  }
  intelligence: {
    /** Readings a sensor variable needs before the statistical detector may raise anything. */
    warmupReadings: number
    /** Consecutive normal readings that resolve an open anomaly; 0 leaves it to people. */
    autoResolveReadings: number
    /** Seconds between re-forecasts of every active sensor; 0 turns the schedule off. */
    predictionIntervalSeconds: number
    predictionHorizonMinutes: number
    /** Seconds a sensor may be silent before it is offline, unless it or its type says; 0 = never. */
    sensorOfflineAfter: number
    /** Seconds between write backs of the detector states changed in memory. */
    writeBackSeconds: number
  }
}

type Env = Record<string, string | undefined>

/** EVENT_RETENTION_COUNT when unset (the bench reads it to judge retention). */
export const DEFAULT_EVENT_RETENTION_COUNT = 100_000

/** The longest silence a sensor may be allowed, in seconds (a year). */
export const MAX_OFFLINE_AFTER = 365 * 24 * 3600

function bad(name: string, value: string, expected: string): never {
  throw new ConfigError(`Invalid ${name}=${JSON.stringify(value)}: expected ${expected}.`)
}

function str(env: Env, name: string, fallback: string): string {
  const raw = env[name]
  return raw === undefined || raw.trim() === '' ? fallback : raw.trim()
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw.trim() === '') return fallback
  const text = raw.trim()
  if (!/^-?\d+$/.test(text)) bad(name, raw, `an integer from ${min} to ${max}`)
  const value = Number(text)
  if (value < min || value > max) bad(name, raw, `an integer from ${min} to ${max}`)
  return value
}

/** `<n>d` or `<n>h` as ms; unset = undefined. */
function retention(env: Env, name: string): number | undefined {
  const raw = env[name]
  if (raw === undefined || raw.trim() === '') return undefined
  const match = /^([1-9]\d{0,5})([dh])$/.exec(raw.trim())
  if (!match) bad(name, raw, 'a duration such as 30d or 12h (days or hours, at least 1)')
  return Number(match[1]) * (match[2] === 'd' ? 86_400_000 : 3_600_000)
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const value = str(env, name, String(fallback)).toLowerCase()
  if (value === 'true' || value === '1') return true
  if (value === 'false' || value === '0') return false
  bad(name, value, 'true or false')
}

function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const value = str(env, name, fallback).toLowerCase()
  if (!(allowed as readonly string[]).includes(value))
    bad(name, value, `one of ${allowed.join(', ')}`)
  return value as T
}

export function parseDatabaseUrl(raw: string): DatabaseConfig {
  if (raw.startsWith('sqlite:')) {
    let path = raw.slice('sqlite:'.length)
    if (path.startsWith('//')) path = path.slice(2)
    if (path === '') bad('DATABASE_URL', raw, 'sqlite:<path>, sqlite::memory: or postgres://…')
    return { kind: 'sqlite', path, url: raw }
  }
  if (raw.startsWith('postgres://') || raw.startsWith('postgresql://')) {
    try {
      new URL(raw)
    } catch {
      bad('DATABASE_URL', raw, 'a valid postgres:// URL')
    }
    return { kind: 'postgres', url: raw }
  }
  bad('DATABASE_URL', raw, 'sqlite:<path>, sqlite::memory: or postgres://…')
}

function redisUrl(env: Env): string | undefined {
  const raw = env.REDIS_URL?.trim()
  if (!raw) return undefined
  if (!/^rediss?:\/\//.test(raw)) bad('REDIS_URL', raw, 'a redis:// or rediss:// URL')
  try {
    new URL(raw)
  } catch {
    bad('REDIS_URL', raw, 'a valid redis:// URL')
  }
  return raw
}

function name(env: Env, key: string, fallback: string): string {
  const value = str(env, key, fallback)
  if (!/^[A-Za-z0-9][A-Za-z0-9:_.-]{0,63}$/.test(value))
    bad(key, value, 'letters, digits and :_.- (at most 64 characters)')
  return value
}

function mqttUrl(env: Env): string | undefined {
  const raw = env.MQTT_URL?.trim()
  if (!raw) return undefined
  if (!/^(mqtts?|tcp|tls|wss?):\/\//.test(raw))
    bad('MQTT_URL', raw, 'an mqtt://, mqtts://, ws:// or wss:// URL such as mqtt://127.0.0.1:1883')
  try {
    if (!new URL(raw).hostname) throw new Error('no host')
  } catch {
    bad('MQTT_URL', raw, 'a valid URL with a host, such as mqtt://127.0.0.1:1883')
  }
  return raw
}

/** A valid MQTT topic filter (optionally `$share/<group>/…`) with a `+` level for the sensor id. */
function mqttTopic(env: Env): string {
  const raw = str(env, 'MQTT_TOPIC', 'sensors/+/readings')
  const expected =
    'an MQTT topic filter with a + level standing for the sensor id, such as sensors/+/readings'
  const levels = raw.replace(/^\$share\/[^/+#]+\//, '').split('/')
  const valid = levels.every(
    (level, i) =>
      level === '+' ||
      (level === '#' && i === levels.length - 1) ||
      (!level.includes('+') && !level.includes('#')),
  )
  if (!valid || !levels.includes('+') || /[\u0000-\u001f]/.test(raw))
    bad('MQTT_TOPIC', raw, expected)
  return raw
}

function mqttClientId(env: Env): string {
  const raw = str(env, 'MQTT_CLIENT_ID', `vigia-${hostname()}`)
  if (/[\u0000-\u001f\s]/.test(raw) || raw.length > 256)
    bad('MQTT_CLIENT_ID', raw, 'up to 256 characters without spaces or control characters')
  return raw
}

function corsOrigins(env: Env): string[] | '*' {
  const raw = str(env, 'CORS_ORIGINS', '*')
  if (raw === '*') return '*'
  const origins = raw
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean)
  for (const origin of origins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin))
      bad('CORS_ORIGINS', raw, 'a comma-separated list of origins such as https://app.example.com')
  }
  return origins
}

/** Same rules as POST /api/v1/users: a plain user name, a password of 8 to 256 characters. */
function adminUser(env: Env): Config['admin'] {
  const username = str(env, 'ADMIN_USERNAME', 'admin')
  if (!/^[A-Za-z0-9._@-]{1,64}$/.test(username))
    bad('ADMIN_USERNAME', username, '1 to 64 letters, digits or . _ @ -')
  const password = env.ADMIN_PASSWORD || undefined
  if (password !== undefined && (password.length < 8 || password.length > 256))
    bad('ADMIN_PASSWORD', '<hidden>', 'a password of 8 to 256 characters')
  return { username, password }
}

/** AUTH_READS=token only means something under AUTH_MODE=required; asked for without it, the start stops. */
function auth(env: Env): Pick<Config, 'authMode' | 'authReads'> {
  const authMode = oneOf(env, 'AUTH_MODE', 'open', ['open', 'required'] as const)
  const authReads = oneOf(env, 'AUTH_READS', 'open', ['open', 'token'] as const)
  if (authReads === 'token' && authMode !== 'required')
    bad(
      'AUTH_READS',
      authReads,
      'open unless AUTH_MODE=required (under AUTH_MODE=open REST reads never need a token)',
    )
  return { authMode, authReads }
}

/** `public`, `private`, `loopback` and CIDR ranges or single addresses, comma-separated. */
function webhookAllow(env: Env): WebhookAllow {
  const text = str(env, 'WEBHOOK_ALLOW', 'public,loopback')
  const expected =
    'a comma-separated list of public, private, loopback and CIDR ranges such as 10.0.0.0/8 or fd00::/8'
  const allow: WebhookAllow = { classes: [], ranges: [], text }
  for (const item of text.split(',').map((part) => part.trim().toLowerCase())) {
    if (item === 'public' || item === 'private' || item === 'loopback') {
      allow.classes.push(item)
      continue
    }
    const [address = '', bits] = item.split('/')
    const family = isIP(address)
    const max = family === 6 ? 128 : 32
    const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : -1
    if (family === 0 || prefix < 0 || prefix > max) bad('WEBHOOK_ALLOW', text, expected)
    allow.ranges.push([address, prefix, family === 6 ? 'ipv6' : 'ipv4'])
  }
  return allow
}

export function loadConfig(env: Env = process.env): Readonly<Config> {
  const nodeEnv = str(env, 'NODE_ENV', 'development')
  const jwtSecret = env.JWT_SECRET?.trim()
  if (jwtSecret && nodeEnv === 'production' && new TextEncoder().encode(jwtSecret).length < 32)
    bad('JWT_SECRET', '<hidden>', 'at least 32 bytes when NODE_ENV=production')

  const pingInterval = int(env, 'WEBSOCKET_PING_INTERVAL', 30, 1, 3600)
  const config: Config = {
    nodeEnv,
    port: int(env, 'PORT', 8000, 0, 65535),
    host: str(env, 'HOST', '0.0.0.0'),
    database: parseDatabaseUrl(str(env, 'DATABASE_URL', 'sqlite:./data/sensors.db')),
    redisUrl: redisUrl(env),
    redisPrefix: name(env, 'REDIS_PREFIX', 'vigia'),
    instanceId: name(
      env,
      'INSTANCE_ID',
      `${
        hostname()
          .replace(/[^A-Za-z0-9:_.-]/g, '-')
          .slice(0, 40) || 'vigia'
      }-${crypto.randomUUID().slice(0, 8)}`,
    ),
    mqtt: {
      url: mqttUrl(env),
      topic: mqttTopic(env),
      clientId: mqttClientId(env),
      autoRegister:
        oneOf(env, 'MQTT_AUTO_REGISTER', 'false', ['true', 'false'] as const) === 'true',
      qos: int(env, 'MQTT_QOS', 1, 0, 1) as 0 | 1,
      sessionExpiry: int(env, 'MQTT_SESSION_EXPIRY', 7 * 24 * 3600, 1, 0xffffffff),
    },
    jwt: {
      secret: jwtSecret || crypto.getRandomValues(new Uint8Array(32)).toHex(),
      secretGenerated: !jwtSecret,
      expiresIn: int(env, 'JWT_EXPIRES_IN', 3600, 1, 60 * 60 * 24 * 365),
    },
    admin: adminUser(env),
    ...auth(env),
    ws: {
      maxConnections: int(env, 'WEBSOCKET_MAX_CONNECTIONS', 100, 1, 1_000_000),
      maxConnectionsPerIp: int(env, 'WEBSOCKET_MAX_CONNECTIONS_PER_IP', 0, 0, 1_000_000),
      pingInterval,
      pingTimeout: int(env, 'WEBSOCKET_PING_TIMEOUT', 10, 1, 3600),
      maxMessageBytes: int(env, 'WEBSOCKET_MAX_MESSAGE_BYTES', 64 * 1024, 128, 16 * 1024 * 1024),
      backpressureLimit: int(
        env,
        'WEBSOCKET_BACKPRESSURE_LIMIT',
        1024 * 1024,
        1024,
        256 * 1024 * 1024,
      ),
      messagesPerSecond: int(env, 'WEBSOCKET_MESSAGES_PER_SECOND', 50, 1, 100_000),
      compression: bool(env, 'WEBSOCKET_COMPRESSION', false),
      maxChannels: int(env, 'WEBSOCKET_MAX_CHANNELS', 50, 1, 10_000),
    },
    events: {
      retentionCount: int(
        env,
        'EVENT_RETENTION_COUNT',
        DEFAULT_EVENT_RETENTION_COUNT,
        1,
        1_000_000_000,
      ),
      retentionSeconds: int(env, 'EVENT_RETENTION_SECONDS', 24 * 3600, 1, 10 * 365 * 24 * 3600),
    },
    corsOrigins: corsOrigins(env),
    logLevel: oneOf(env, 'LOG_LEVEL', 'info', [
      'debug',
      'info',
      'warn',
      'error',
      'silent',
    ] as const),
    bodyLimitBytes: int(env, 'BODY_LIMIT_BYTES', 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    http: {
      bodyTimeout: int(env, 'HTTP_BODY_TIMEOUT', 10, 1, 3600),
      maxRequestsPerIp: int(env, 'HTTP_MAX_REQUESTS_PER_IP', 256, 0, 1_000_000),
    },
    login: {
      maxPerIp: int(env, 'LOGIN_MAX_ATTEMPTS_PER_IP', 20, 1, 1_000_000),
      maxPerUser: int(env, 'LOGIN_MAX_ATTEMPTS_PER_USER', 5, 1, 1_000_000),
      windowSeconds: int(env, 'LOGIN_WINDOW_SECONDS', 60, 1, 24 * 3600),
    },
    trustProxy: bool(env, 'TRUST_PROXY', false),
    webhooks: {
      allow: webhookAllow(env),
      timeoutMs: int(env, 'WEBHOOK_TIMEOUT', 10, 1, 300) * 1000,
      retryForMs: int(env, 'WEBHOOK_RETRY_FOR', 24 * 3600, 1, 30 * 24 * 3600) * 1000,
      retryBaseMs: int(env, 'WEBHOOK_RETRY_BASE_MS', 5000, 10, 3_600_000),
      retryMaxMs: int(env, 'WEBHOOK_RETRY_MAX_MS', 3_600_000, 10, 24 * 3_600_000),
    },
    history: {
      retentionMs: retention(env, 'READINGS_RETENTION'),
      retentionInterval: int(env, 'READINGS_RETENTION_INTERVAL', 60, 1, 86_400),
      aggregateMaxRows: int(env, 'AGGREGATE_MAX_ROWS', 100_000, 1, 10_000_000),
      rollups: bool(env, 'HISTORY_ROLLUPS', true),
    },
    intelligence: {
      warmupReadings: int(env, 'ANOMALY_WARMUP_READINGS', 30, 10, 100_000),
      autoResolveReadings: int(env, 'ANOMALY_AUTO_RESOLVE_READINGS', 10, 0, 100_000),
      predictionIntervalSeconds: int(env, 'PREDICTION_INTERVAL_SECONDS', 0, 0, 7 * 24 * 3600),
      predictionHorizonMinutes: int(env, 'PREDICTION_HORIZON_MINUTES', 60, 1, 10_080),
      sensorOfflineAfter: int(env, 'SENSOR_OFFLINE_AFTER', 0, 0, MAX_OFFLINE_AFTER),
      writeBackSeconds: int(env, 'DETECTOR_WRITE_BACK_SECONDS', 1, 1, 86_400),
    },
  }
  return deepFreeze(config)
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}
