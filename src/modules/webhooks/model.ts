// Webhook schemas: an endpoint and its filters, the secret shown once, the delivery log, the test answer.
import { t } from 'elysia'
import { Id, OneOf, pagination, Text } from '../../lib/schemas'

/** What `event_types` may name: an entity event's event_type, or system_event. */
export const EVENT_TYPES = [
  'created',
  'updated',
  'deleted',
  'anomaly_detected',
  'prediction_completed',
  'system_event',
] as const

export const WEBHOOK_STATUSES = ['active', 'paused', 'disabled'] as const
export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed', 'cancelled'] as const

const Url = t.String({
  minLength: 1,
  maxLength: 2000,
  description: 'http:// or https:// URL the events are POSTed to (no user:password part)',
  examples: ['https://hooks.example.com/vigia'],
})
const Channels = t.Array(t.String({ maxLength: 64 }), {
  minItems: 1,
  maxItems: 100,
  description:
    'Channels as on the WebSocket (general gets every event; readings:5 only sensor 5’s readings). general when omitted.',
  examples: [['anomalies']],
})
const EventTypes = t.Array(OneOf(EVENT_TYPES), {
  maxItems: EVENT_TYPES.length,
  description:
    'Only events of these types (entity event_type, or system_event); every type when empty or omitted',
  examples: [['anomaly_detected']],
})

export const WebhookCreate = t.Object({
  url: Url,
  channels: t.Optional(Channels),
  event_types: t.Optional(EventTypes),
  description: t.Optional(Text(200, 'Pager for the cold room')),
  status: t.Optional(OneOf(['active', 'paused'], { description: 'active when omitted' })),
})
export type WebhookCreate = typeof WebhookCreate.static

export const WebhookPatch = t.Partial(
  t.Object({
    url: Url,
    channels: Channels,
    event_types: EventTypes,
    description: t.Union([Text(200, 'Pager for the cold room'), t.Null()]),
    status: OneOf(['active', 'paused'], {
      description:
        'paused: matching events still queue up but nothing is sent; active: sends what waits, in order (also re-enables a disabled endpoint)',
    }),
  }),
  { minProperties: 1 },
)
export type WebhookPatch = typeof WebhookPatch.static

export const Webhook = t.Object({
  id: t.Integer({ examples: [1] }),
  url: t.String(),
  description: t.Union([t.String(), t.Null()]),
  channels: t.Array(t.String()),
  event_types: t.Array(t.String()),
  status: OneOf(WEBHOOK_STATUSES),
  disabled_reason: t.Union([t.String(), t.Null()]),
  previous_secret_expires_at: t.Union([t.String({ format: 'date-time' }), t.Null()], {
    description: 'After a rotation: until when the old secret still signs each delivery too',
  }),
  pending: t.Integer({ description: 'Deliveries waiting to be sent' }),
  created_at: t.String({ format: 'date-time' }),
  updated_at: t.String({ format: 'date-time' }),
})
export type Webhook = typeof Webhook.static

export const WebhookWithSecret = t.Composite([
  Webhook,
  t.Object({
    secret: t.String({
      description: 'whsec_<base64>: shown only in this answer; verify deliveries with it',
      examples: ['whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='],
    }),
  }),
])
export type WebhookWithSecret = typeof WebhookWithSecret.static

export const RotateBody = t.Object({
  overlap_seconds: t.Optional(
    t.Integer({
      minimum: 0,
      maximum: 7 * 24 * 3600,
      default: 86_400,
      description:
        'How long the old secret keeps signing beside the new one (24 h when omitted; 0 = drop it now)',
    }),
  ),
})
export type RotateBody = typeof RotateBody.static

export const Delivery = t.Object({
  id: t.Integer(),
  webhook_id: t.Integer(),
  seq: t.Integer({ description: 'The event’s seq (0 for a test delivery)' }),
  msg_id: t.String({ description: 'The webhook-id header, the same on every attempt' }),
  status: OneOf(DELIVERY_STATUSES),
  attempts: t.Integer(),
  next_attempt_at: t.Union([t.String({ format: 'date-time' }), t.Null()]),
  last_attempt_at: t.Union([t.String({ format: 'date-time' }), t.Null()]),
  response_status: t.Union([t.Integer(), t.Null()], {
    description: 'HTTP status of the last attempt',
  }),
  response_ms: t.Union([t.Integer(), t.Null()], {
    description: 'Response time of the last attempt',
  }),
  last_error: t.Union([t.String(), t.Null()]),
  delivered_at: t.Union([t.String({ format: 'date-time' }), t.Null()]),
  created_at: t.String({ format: 'date-time' }),
})
export type Delivery = typeof Delivery.static

export const DeliveryQuery = t.Object({
  ...pagination,
  status: t.Optional(OneOf(DELIVERY_STATUSES)),
})
export type DeliveryQuery = typeof DeliveryQuery.static

export const TestResult = t.Object({
  delivered: t.Boolean(),
  delivery: Delivery,
})

export const WebhookParams = t.Object({ id: Id })
