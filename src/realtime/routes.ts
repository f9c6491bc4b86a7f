// The WebSocket endpoint /api/v1/ws, the test-event endpoint and the connection statistics.
import type { Server } from 'bun'
import { Elysia, t } from 'elysia'
import { isNumericString } from 'elysia/utils'
import type { AppContext } from '../context'
import { clientAddress } from '../lib/client-address'
import { InvalidFieldError, NotFoundError, UpgradeRequiredError } from '../lib/errors'
import { errorResponse, errors, OneOf } from '../lib/schemas'
import { CHANNEL_HELP, isChannel } from './channels'
import type { Socket } from './hub'
import {
  CLOSE,
  parseChannels,
  type Admission,
  type HandshakeQuery,
  type SocketLayer,
} from './socket'

const UserStat = t.Object({ user_id: t.String(), connected_at: t.String({ format: 'date-time' }) })
const Truncated = t.Optional(
  t.Literal(true, {
    description:
      'Present when the answer was cut to stay small: at most 500 channels (the busiest) and 50 users per channel are listed; counts stay exact',
  }),
)
const ChannelStats = t.Object({ connections: t.Integer(), users: t.Array(UserStat) })
const InstanceStats = t.Object({
  id: t.String(),
  started_at: t.String({ format: 'date-time' }),
  connections: t.Integer(),
  last_seq: t.Integer(),
  events_emitted: t.Integer(),
  messages_sent: t.Integer(),
  pubsub: OneOf(['ok', 'down']),
  truncated: Truncated,
})
const DeploymentStats = t.Object(
  {
    instances: t.Integer(),
    complete: t.Boolean({ description: 'False when Redis could not be read: this instance only' }),
    total_channels: t.Integer(),
    total_connections: t.Integer(),
    events_emitted: t.Integer(),
    messages_sent: t.Integer(),
    channels: t.Record(t.String(), ChannelStats),
    truncated: Truncated,
    members: t.Array(
      t.Object({
        id: t.String(),
        connections: t.Integer(),
        last_seq: t.Integer(),
        updated_at: t.String({ format: 'date-time' }),
      }),
    ),
  },
  { description: 'Every instance sharing this Redis (just this one without REDIS_URL)' },
)

const SystemEvent = t.Object({
  type: t.Literal('system_event'),
  level: OneOf(['info', 'warning', 'error']),
  message: t.String(),
  data: t.Record(t.String(), t.Unknown()),
  timestamp: t.String({ format: 'date-time' }),
  seq: t.Integer(),
})

/**
 * Decides who may open a socket and on which channels. The open endpoint takes `user_id` as given;
 * the auth module's `tokenAdmit` checks tokens.
 */
export type Admit = (
  query: HandshakeQuery & { token?: string },
  secure: boolean,
) => Promise<Admission | { code: number; reason: string }>

export const openAdmit: Admit = async (query) => {
  const parsed = parseChannels(query.channel)
  if ('error' in parsed) return { code: CLOSE.badQuery, reason: parsed.error }
  const userId = query.user_id?.trim() || undefined
  if (userId && userId.length > 128)
    return { code: CLOSE.badQuery, reason: 'user_id must be at most 128 characters' }
  return { channels: parsed.channels, userId }
}

/** A text frame as Elysia's WebSocket route handed it on: JSON-looking text parsed, numbers and literals too. */
function parseMessage(message: string | Buffer): unknown {
  if (typeof message !== 'string') return message
  const start = message.charCodeAt(0)
  if (start === 34 || start === 47 || start === 91 || start === 123) {
    try {
      return JSON.parse(message)
    } catch {
      return message
    }
  }
  if (isNumericString(message)) return +message
  if (message === 'true') return true
  if (message === 'false') return false
  if (message === 'null') return null
  return message
}

/**
 * What Bun keeps per connection (`ws.data`): the handshake, then the verdict. Bun's server calls these
 * methods (Elysia's server-wide handler dispatches to `ws.data`), so a connection holds one small object
 * and no closures of its own.
 */
class Connection {
  /** Messages that arrive while the handshake is still being checked wait for the verdict, in order. */
  admitting: Promise<void> | undefined
  admission: Admission | undefined

  constructor(
    readonly layer: SocketLayer,
    readonly admit: Admit,
    readonly query: HandshakeQuery & { token?: string },
    readonly secure: boolean,
    readonly forwardedFor: string | undefined,
    readonly trustProxy: AppContext['config']['trustProxy'],
  ) {}

  open(ws: Socket) {
    const ip = clientAddress(this.trustProxy, this.forwardedFor, ws.remoteAddress)
    this.admitting = this.admit(this.query, this.secure).then((verdict) => {
      this.admitting = undefined
      if (ws.readyState !== 1) return
      if ('code' in verdict) return this.layer.refuse(ws, verdict.code, verdict.reason)
      this.admission = verdict
      this.layer.open(ws, this.query, { ip, ...verdict })
    })
  }

  message(ws: Socket, message: string | Buffer) {
    const data = parseMessage(message)
    const handle = () => this.layer.message(ws, data, this.admission)
    if (this.admitting) this.admitting.then(handle)
    else handle()
  }

  close(ws: Socket) {
    this.layer.close(ws)
  }

  drain(ws: Socket) {
    this.layer.drain(ws)
  }

  ping(ws: Socket) {
    this.layer.alive(ws)
  }

  pong(ws: Socket) {
    this.layer.alive(ws)
  }
}

/** Text of one query parameter as Elysia's query parser gives it (the last of a repeated one). */
function handshakeQuery(url: string): HandshakeQuery & { token?: string } {
  const at = url.indexOf('?')
  const out: Record<string, string> = {}
  if (at < 0) return out
  for (const [key, value] of new URLSearchParams(url.slice(at + 1)))
    if (HANDSHAKE_KEYS.has(key)) out[key] = value
  return out
}
const HANDSHAKE_KEYS = new Set(['channel', 'user_id', 'since', 'epoch', 'token', 'snapshot'])

/** The Connection a WebSocket handshake on `/api/v1/ws` (`secure`: `/secure`) is upgraded with. */
const connectionFor = (ctx: AppContext, admit: Admit, request: Request, secure: boolean) =>
  new Connection(
    ctx.realtime.sockets,
    admit,
    handshakeQuery(request.url),
    secure,
    request.headers.get('x-forwarded-for') ?? undefined,
    ctx.config.trustProxy,
  )

const isHandshake = (request: Request) =>
  request.headers.get('upgrade')?.toLowerCase() === 'websocket'

/**
 * Bun routes (Elysia's `serve.routes`) for the two WebSocket paths: a handshake is upgraded right there,
 * before Elysia builds a request context, so a connection leaves no request garbage behind; anything else
 * (a plain GET answering 426, a handshake from an origin CORS_ORIGINS does not list, which gets its 403)
 * goes through the app as before.
 */
export function nativeUpgrades(
  ctx: AppContext,
  admit: Admit,
  app: () => { fetch(request: Request): Response | Promise<Response> },
) {
  const origins = ctx.config.corsOrigins === '*' ? undefined : new Set(ctx.config.corsOrigins)
  const route = (path: string, secure: boolean) => ({
    GET(request: Request, server: Server<unknown>) {
      const origin = request.headers.get('origin')
      if (isHandshake(request) && !(origin && origins && !origins.has(origin))) {
        const start = performance.now()
        const data = connectionFor(ctx, admit, request, secure)
        if (server.upgrade(request, { data })) {
          // Counted like every request the app answers (the system module's hook).
          ctx.metrics.observeHttp('GET', path, 101, (performance.now() - start) / 1000)
          return undefined
        }
      }
      return app().fetch(request)
    },
  })
  return {
    '/api/v1/ws': route('/api/v1/ws', false),
    '/api/v1/ws/secure': route('/api/v1/ws/secure', true),
  }
}

export const realtimeRoutes = (ctx: AppContext, admit: Admit = openAdmit) => {
  const { realtime, config } = ctx
  const { sockets, hub, emitter, cluster } = realtime

  /**
   * The upgrade, served by Bun's own WebSocket handler behind Elysia's route: a plain request answers
   * 426; a WebSocket handshake is upgraded with a Connection as its only per-socket state.
   */
  const upgrade =
    (path: string, secure: boolean) =>
    ({
      request,
      server,
      set,
    }: {
      request: Request
      server: Server<unknown> | null
      set: { headers: Record<string, unknown> }
    }) => {
      if (!isHandshake(request) || !server) throw new UpgradeRequiredError(path)
      const data = connectionFor(ctx, admit, request, secure)
      const headers = Object.keys(set.headers).length > 0 ? set.headers : undefined
      if (server.upgrade(request, { data, headers: headers as HeadersInit | undefined })) return
      throw new UpgradeRequiredError(path)
    }

  return new Elysia({ name: 'realtime', prefix: '/api/v1/ws', detail: { tags: ['websocket'] } })
    .get('', upgrade('/api/v1/ws', false), {
      response: { 426: errorResponse(426) },
      detail: {
        summary: 'The WebSocket endpoint (query: channel, user_id, since, epoch, snapshot)',
        description:
          'Open it with a WebSocket client; a plain HTTP request answers 426. Its channels, messages and close codes are described by the AsyncAPI document at /asyncapi.',
      },
    })
    .get('/secure', upgrade('/api/v1/ws/secure', true), {
      response: { 426: errorResponse(426) },
      detail: {
        summary:
          'The authenticated WebSocket endpoint (query: channel, token, since, epoch, snapshot)',
        description:
          'Open it with a WebSocket client; a plain HTTP request answers 426. Its channels, messages and close codes are described by the AsyncAPI document at /asyncapi.',
      },
    })
    .post(
      '/test-event',
      async ({ query }) => {
        const channel = query.channel ?? 'general'
        if (!isChannel(channel))
          throw new InvalidFieldError('channel', `Unknown channel "${channel}". ${CHANNEL_HELP}`)
        const event = await emitter.system({
          level: query.level ?? 'info',
          message: query.message ?? 'Evento de prueba',
          data: { test: true, channel, module: 'websocket' },
          channel,
        })
        return { status: 'sent' as const, channel, event }
      },
      {
        query: t.Object({
          channel: t.Optional(t.String({ maxLength: 100, examples: ['general'] })),
          message: t.Optional(t.String({ maxLength: 2000, examples: ['Prueba'] })),
          level: t.Optional(
            OneOf(['info', 'warning', 'error'], { description: 'info when omitted' }),
          ),
        }),
        response: {
          200: t.Object({ status: t.Literal('sent'), channel: t.String(), event: SystemEvent }),
          ...errors,
        },
        detail: {
          summary: 'Emit a test system_event',
          description: 'Goes to the named channel and to general, like any system event.',
        },
      },
    )
    .get(
      '/stats',
      async () => {
        const { channels: _, updated_at: __, ...instance } = await cluster.instance()
        return { ...hub.stats(), instance, deployment: await cluster.deployment() }
      },
      {
        response: {
          200: t.Object({
            total_channels: t.Integer(),
            total_connections: t.Integer(),
            channels: t.Record(t.String(), ChannelStats),
            truncated: Truncated,
            instance: InstanceStats,
            deployment: DeploymentStats,
          }),
        },
        detail: {
          summary: 'Connections and users per channel',
          description:
            'The top-level figures are this instance’s; `deployment` adds up every instance sharing its Redis.',
        },
      },
    )
    .get(
      '/stats/:channel',
      async ({ params }) => {
        if (!isChannel(params.channel)) throw new NotFoundError('Channel', params.channel)
        const deployment = (await cluster.deployment()).channels[params.channel]
        return {
          channel: params.channel,
          ...hub.channelStats(params.channel),
          deployment: deployment ?? { connections: 0, users: [] },
        }
      },
      {
        params: t.Object({ channel: t.String({ examples: ['sensors'] }) }),
        response: {
          200: t.Object({
            channel: t.String(),
            connections: t.Integer(),
            users: t.Array(UserStat),
            truncated: Truncated,
            deployment: ChannelStats,
          }),
          ...errors,
        },
        detail: {
          summary: 'Connections and users of one channel',
          description:
            'The original shape for one channel on this instance, with `deployment` adding up every instance; 404 for a name that is not a channel.',
        },
      },
    )
}
