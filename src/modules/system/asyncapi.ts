// The AsyncAPI 3 document of the WebSocket API (CONTRACT §4 and §7): its two endpoints, every message
// each way, and the close codes. Entity payloads are the REST models, so both documents say the same.
import { plainSchema } from '../../lib/openapi'
import { VERSION } from '../../lib/version'
import { CHANNEL_HELP } from '../../realtime/channels'
import { CLOSE } from '../../realtime/socket'
import { Anomaly } from '../anomalies/model'
import { Location } from '../locations/model'
import { Prediction } from '../predictions/model'
import { Reading } from '../readings/model'
import { Sensor } from '../sensors/model'

type Json = Record<string, any>

/** A TypeBox model as plain JSON Schema (symbols and Elysia's numeric-string branches gone). */
const schema = (model: unknown): Json => plainSchema(JSON.parse(JSON.stringify(model))) as Json

const timestamp = { type: 'string', format: 'date-time', examples: ['2025-07-20T10:30:00.125Z'] }
const seq = {
  type: 'integer',
  minimum: 1,
  description: 'Grows with every event of the deployment; resume with since=<the last one seen>',
  examples: [42],
}
const channelName = {
  type: 'string',
  description: CHANNEL_HELP,
  examples: ['sensors', 'readings:5'],
}

export const CLOSE_CODES: Record<number, string> = {
  [CLOSE.shutdown]: 'The server is shutting down; reconnect (to another instance) with since',
  [CLOSE.policy]:
    'Policy: the client was too slow to read and its buffer filled, or it flooded the server with messages',
  [CLOSE.tooLarge]: 'A client message was larger than WEBSOCKET_MAX_MESSAGE_BYTES',
  [CLOSE.internal]: 'A replay could not continue (history moved); reconnect with the same since',
  [CLOSE.full]: 'WEBSOCKET_MAX_CONNECTIONS or the per-address cap is reached; retry later',
  [CLOSE.badQuery]: 'Bad query: an unknown channel or a malformed since',
  [CLOSE.unauthorized]:
    'The token is missing, malformed, badly signed, expired or revoked (/secure, or any socket under AUTH_MODE=required)',
  [CLOSE.forbidden]: 'The token is valid but may not join a requested channel',
}

const ENTITIES = [
  ['sensor', 'sensors', Sensor, 'A sensor was created, updated or deleted'],
  ['location', 'locations', Location, 'A location was created, updated or deleted'],
  ['reading', 'readings', Reading, 'A reading was stored, corrected or deleted'],
  [
    'anomaly',
    'anomalies',
    Anomaly,
    'An anomaly was detected (anomaly_detected), changed (updated) or deleted',
  ],
  [
    'prediction',
    'predictions',
    Prediction,
    'A forecast was requested (created), computed or failed (prediction_completed) or deleted',
  ],
] as const

function entityMessage(type: string, channel: string, model: unknown, summary: string): Json {
  return {
    name: `${type}_event`,
    title: `${type} entity_event`,
    summary,
    contentType: 'application/json',
    description: `Sent on ${channel}, ${channel}:<id>${type === 'sensor' || type === 'location' ? '' : ', sensors:<sensor_id>'} and general. \`data\` is the ${type} as the REST API shows it.`,
    payload: {
      type: 'object',
      required: [
        'type',
        'entity_type',
        'event_type',
        'entity_id',
        'data',
        'timestamp',
        'metadata',
        'seq',
      ],
      properties: {
        type: { type: 'string', const: 'entity_event' },
        entity_type: { type: 'string', const: type },
        event_type: {
          type: 'string',
          enum: ['created', 'updated', 'deleted', 'anomaly_detected', 'prediction_completed'],
        },
        entity_id: { type: 'integer', minimum: 1, examples: [1] },
        data: schema(model),
        timestamp,
        metadata: {
          type: 'object',
          required: ['action'],
          properties: { action: { type: 'string', examples: [`create_${type}`] } },
        },
        seq,
      },
    },
  }
}

/** What the server sends: the original's three shapes (with seq), snapshot, error and pong. */
const SERVER_MESSAGES: Record<string, Json> = {
  ...Object.fromEntries(
    ENTITIES.map(([type, channel, model, summary]) => [
      `${type}Event`,
      entityMessage(type, channel, model, summary),
    ]),
  ),
  systemEvent: {
    name: 'system_event',
    title: 'system_event',
    summary:
      'Something happened to the system: start, shutdown, a test event, an ingestion warning',
    contentType: 'application/json',
    description: 'Sent on general, and on the channel a test event names.',
    payload: {
      type: 'object',
      required: ['type', 'level', 'message', 'data', 'timestamp', 'seq'],
      properties: {
        type: { type: 'string', const: 'system_event' },
        level: { type: 'string', enum: ['info', 'warning', 'error'] },
        message: { type: 'string', examples: ['Sistema iniciado correctamente'] },
        data: { type: 'object', examples: [{ module: 'websocket' }] },
        timestamp,
        seq,
      },
    },
  },
  connection: {
    name: 'connection',
    title: 'connection',
    summary:
      'The greeting on connect (status connected), and the answer to subscribe, unsubscribe and refresh',
    contentType: 'application/json',
    payload: {
      type: 'object',
      required: ['type', 'status', 'channel', 'timestamp'],
      properties: {
        type: { type: 'string', const: 'connection' },
        status: { type: 'string', enum: ['connected', 'subscribed', 'unsubscribed', 'refreshed'] },
        channel: channelName,
        timestamp,
        channels: { type: 'array', items: channelName, description: 'Every channel held now' },
        epoch: {
          type: 'string',
          description: 'The history that seq belongs to; send it back with since',
        },
        last_seq: { type: 'integer', minimum: 0, description: 'The newest seq at that moment' },
        recovered: {
          type: 'boolean',
          description:
            'With since: true when every missed event follows; false when history no longer reaches back (reload over REST)',
        },
        replayed: { type: 'integer', minimum: 0, description: 'Events about to be replayed' },
        oldest_seq: { type: 'integer', minimum: 0, description: 'The oldest seq still kept' },
        token_expires_at: { ...timestamp, description: 'On refreshed: when the new token expires' },
      },
    },
  },
  snapshot: {
    name: 'snapshot',
    title: 'snapshot',
    summary:
      'With snapshot=latest: the latest values of every sensor the channels cover, as of event seq',
    contentType: 'application/json',
    description:
      'Sent right after the connection message; every event after seq follows, none before.',
    payload: {
      type: 'object',
      required: ['type', 'seq', 'data'],
      properties: {
        type: { type: 'string', const: 'snapshot' },
        seq: { ...seq, minimum: 0 },
        data: {
          type: 'array',
          items: {
            type: 'object',
            required: ['sensor_id', 'status', 'values'],
            properties: {
              sensor_id: { type: 'integer', minimum: 1, examples: [1] },
              status: { type: 'string', enum: ['online', 'offline', 'unknown'] },
              last_seen: { type: ['string', 'null'], format: 'date-time' },
              values: {
                type: 'object',
                description:
                  'Each variable (co2, temperatura…) with its latest value and when it was read',
                additionalProperties: {
                  type: 'object',
                  required: ['value', 'timestamp'],
                  properties: { value: { type: 'number' }, timestamp },
                },
                examples: [{ co2: { value: 415, timestamp: '2025-07-20T10:30:00Z' } }],
              },
            },
          },
        },
      },
    },
  },
  error: {
    name: 'error',
    title: 'error',
    summary: 'A client message the server could not use; the connection stays open',
    contentType: 'application/json',
    payload: {
      type: 'object',
      required: ['type', 'code', 'message'],
      properties: {
        type: { type: 'string', const: 'error' },
        code: {
          type: 'string',
          description:
            'invalid_json, invalid_message, unknown_action, unknown_channel, forbidden_channel, not_subscribed, rate_limited, refresh_not_supported, invalid_token, token_expired',
          examples: ['unknown_channel'],
        },
        message: { type: 'string', examples: ['Unknown channel "nope". ' + CHANNEL_HELP] },
      },
    },
  },
  pong: {
    name: 'pong',
    title: 'pong',
    summary: 'The answer to a ping action',
    contentType: 'application/json',
    payload: {
      type: 'object',
      required: ['type'],
      properties: { type: { type: 'string', const: 'pong' }, timestamp },
    },
  },
}

/** What a client may send. */
const CLIENT_MESSAGES: Record<string, Json> = {
  subscribe: {
    name: 'subscribe',
    title: 'subscribe',
    summary: 'Join one more channel; answered by a connection message with status subscribed',
    contentType: 'application/json',
    payload: {
      type: 'object',
      required: ['action', 'channel'],
      properties: { action: { type: 'string', const: 'subscribe' }, channel: channelName },
    },
  },
  unsubscribe: {
    name: 'unsubscribe',
    title: 'unsubscribe',
    summary: 'Leave a channel; answered by a connection message with status unsubscribed',
    contentType: 'application/json',
    payload: {
      type: 'object',
      required: ['action', 'channel'],
      properties: { action: { type: 'string', const: 'unsubscribe' }, channel: channelName },
    },
  },
  ping: {
    name: 'ping',
    title: 'ping',
    summary: 'Answered by pong',
    contentType: 'application/json',
    payload: {
      type: 'object',
      required: ['action'],
      properties: { action: { type: 'string', const: 'ping' } },
    },
  },
  refresh: {
    name: 'refresh',
    title: 'refresh',
    summary: 'Hand over a newer token of the same user before the current one expires',
    contentType: 'application/json',
    payload: {
      type: 'object',
      required: ['action', 'token'],
      properties: {
        action: { type: 'string', const: 'refresh' },
        token: { type: 'string', description: 'A fresh access_token from POST /auth/login' },
      },
    },
  },
}

const query = (secure: boolean) => ({
  type: 'object',
  properties: {
    channel: {
      ...channelName,
      description: `One channel or several separated by commas (general when omitted). ${CHANNEL_HELP}`,
    },
    ...(secure
      ? {}
      : { user_id: { type: 'string', description: 'Shown as user_id in /api/v1/ws/stats' } }),
    token: {
      type: 'string',
      description: secure
        ? 'The access_token from POST /auth/login (required)'
        : 'Needed only under AUTH_MODE=required',
    },
    since: { type: 'string', pattern: '^[0-9]+$', description: 'Resume after this seq' },
    epoch: {
      type: 'string',
      description: 'The epoch of the connection message that seq came from',
    },
    snapshot: { type: 'string', enum: ['latest'], description: 'Send a snapshot message first' },
  },
  ...(secure ? { required: ['token'] } : {}),
})

const closeCodeTable = Object.entries(CLOSE_CODES)
  .map(([code, when]) => `| ${code} | ${when} |`)
  .join('\n')

function channel(address: string, secure: boolean): Json {
  return {
    address,
    title: secure ? 'Authenticated event stream' : 'Event stream',
    description: [
      secure
        ? 'Like /api/v1/ws, with the token in the query; the channels a user may join come from the token.'
        : 'The original endpoint: no token under AUTH_MODE=open.',
      'Events go to their entity channel (sensors, locations, readings, anomalies, predictions), the matching sub-channels (sensors:5 gets everything about sensor 5; readings:5, anomalies:5, predictions:5 that kind for sensor 5; locations:3) and general. A connection on several channels gets each event once.',
      `Close codes:\n\n| code | when |\n|---|---|\n${closeCodeTable}`,
    ].join('\n\n'),
    messages: Object.fromEntries(
      Object.keys({ ...SERVER_MESSAGES, ...CLIENT_MESSAGES }).map((name) => [
        name,
        { $ref: `#/components/messages/${name}` },
      ]),
    ),
    bindings: { ws: { method: 'GET', query: query(secure), bindingVersion: '0.1.0' } },
    'x-close-codes': CLOSE_CODES,
  }
}

function operations(channelId: string, secure: boolean): Json {
  const ref = (name: string) => ({ $ref: `#/channels/${channelId}/messages/${name}` })
  const security = secure ? { security: [{ $ref: '#/components/securitySchemes/queryToken' }] } : {}
  return {
    [`${channelId}Send`]: {
      action: 'send',
      channel: { $ref: `#/channels/${channelId}` },
      title: 'Server messages',
      summary: 'Events of the channels held, connection answers, snapshot, errors and pong',
      messages: Object.keys(SERVER_MESSAGES).map(ref),
      ...security,
    },
    [`${channelId}Receive`]: {
      action: 'receive',
      channel: { $ref: `#/channels/${channelId}` },
      title: 'Client actions',
      summary: 'subscribe, unsubscribe, ping and refresh',
      messages: Object.keys(CLIENT_MESSAGES).map(ref),
      ...security,
    },
  }
}

/** The AsyncAPI 3.1 document; `{host}` defaults to localhost:8000 (documentation tools let one set it). */
export function asyncApiDocument() {
  return {
    asyncapi: '3.1.0',
    info: {
      title: 'Vigía WebSocket API',
      version: VERSION,
      description:
        'Every change to sensors, locations, readings, anomalies and predictions, pushed live as JSON text frames. The REST API is described at /swagger.',
    },
    defaultContentType: 'application/json',
    servers: {
      vigia: {
        host: '{host}',
        protocol: 'ws',
        description: 'This server (wss behind a TLS proxy)',
        variables: { host: { default: 'localhost:8000', description: 'host:port of the server' } },
      },
    },
    channels: {
      events: channel('/api/v1/ws', false),
      secureEvents: channel('/api/v1/ws/secure', true),
    },
    operations: { ...operations('events', false), ...operations('secureEvents', true) },
    components: {
      messages: { ...SERVER_MESSAGES, ...CLIENT_MESSAGES },
      securitySchemes: {
        queryToken: {
          type: 'httpApiKey',
          name: 'token',
          in: 'query',
          description: 'The access_token from POST /auth/login',
        },
      },
    },
  }
}
