// The WebSocket endpoint /api/v1/ws, the test-event endpoint and the connection statistics.
import { Elysia, t } from 'elysia'
import type { AppContext } from '../context'
import { clientAddress } from '../lib/client-address'
import { InvalidFieldError, NotFoundError, UpgradeRequiredError } from '../lib/errors'
import { errorResponse, errors, OneOf } from '../lib/schemas'
import { CHANNEL_HELP, isChannel } from './channels'
import type { Socket } from './hub'
import { CLOSE, parseChannels, type Admission, type HandshakeQuery } from './socket'

const HandshakeQuerySchema = t.Object({
  channel: t.Optional(t.String()),
  user_id: t.Optional(t.String()),
  since: t.Optional(t.String()),
  epoch: t.Optional(t.String()),
  token: t.Optional(t.String()),
  snapshot: t.Optional(t.String()),
})

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

export const realtimeRoutes = (ctx: AppContext, admit: Admit = openAdmit) => {
  const { realtime, config } = ctx
  const { sockets, hub, emitter, cluster } = realtime
  const admissions = new WeakMap<object, Admission>()
  // Messages that arrive while the handshake is still being checked wait for the verdict, in order.
  const admitting = new WeakMap<object, Promise<void>>()

  const socketHandlers = (secure: boolean) => ({
    query: HandshakeQuerySchema,
    async open(ws: {
      raw: unknown
      data: { query: HandshakeQuery; headers: Record<string, string | undefined> }
    }) {
      const raw = ws.raw as Socket
      const query = ws.data.query
      const ip = clientAddress(
        config.trustProxy,
        ws.data.headers['x-forwarded-for'],
        raw.remoteAddress,
      )
      const pending = admit(query, secure).then((verdict) => {
        admitting.delete(raw)
        if (raw.readyState !== 1) return
        if ('code' in verdict) return sockets.refuse(raw, verdict.code, verdict.reason)
        admissions.set(raw, verdict)
        sockets.open(raw, query, { ip, ...verdict })
      })
      admitting.set(raw, pending)
      await pending
    },
    message(ws: { raw: unknown }, message: unknown) {
      const raw = ws.raw as Socket
      const handle = () => sockets.message(raw, message, admissions.get(raw))
      const pending = admitting.get(raw)
      if (pending) pending.then(handle)
      else handle()
    },
    close(ws: { raw: unknown }) {
      sockets.close(ws.raw as Socket)
    },
    drain(ws: { raw: unknown }) {
      sockets.drain(ws.raw as Socket)
    },
    pong(raw: unknown) {
      sockets.alive(raw as Socket)
    },
    ping(raw: unknown) {
      sockets.alive(raw as Socket)
    },
  })

  return new Elysia({ name: 'realtime', prefix: '/api/v1/ws', detail: { tags: ['websocket'] } })
    .ws('', socketHandlers(false))
    .ws('/secure', socketHandlers(true))
    .get(
      '',
      () => {
        throw new UpgradeRequiredError('/api/v1/ws')
      },
      {
        response: { 426: errorResponse(426) },
        detail: {
          summary: 'The WebSocket endpoint (query: channel, user_id, since, epoch, snapshot)',
          description:
            'Open it with a WebSocket client; a plain HTTP request answers 426. Its channels, messages and close codes are described by the AsyncAPI document at /asyncapi.',
        },
      },
    )
    .get(
      '/secure',
      () => {
        throw new UpgradeRequiredError('/api/v1/ws/secure')
      },
      {
        response: { 426: errorResponse(426) },
        detail: {
          summary:
            'The authenticated WebSocket endpoint (query: channel, token, since, epoch, snapshot)',
          description:
            'Open it with a WebSocket client; a plain HTTP request answers 426. Its channels, messages and close codes are described by the AsyncAPI document at /asyncapi.',
        },
      },
    )
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
