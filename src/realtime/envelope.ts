// The wire shapes of server messages (the original's three, plus seq, error and pong) and their builders.
import { iso } from '../lib/time'
import type { EntityType } from './channels'

export type EntityEventType =
  'created' | 'updated' | 'deleted' | 'anomaly_detected' | 'prediction_completed'
export type SystemLevel = 'info' | 'warning' | 'error'

/** What a service hands to the emitter: a fact about an entity, no channels, no sockets. */
export interface DomainEvent {
  entity_type: EntityType
  event_type: EntityEventType
  entity_id: number
  /** The entity as the REST API shows it; `sensor_id` in it routes data events. */
  data: Record<string, unknown> & { sensor_id?: number | null }
  action: string
  metadata?: Record<string, unknown>
}

export interface SystemEventDraft {
  level: SystemLevel
  message: string
  data?: Record<string, unknown>
  /** A channel besides general (the test-event endpoint names one). */
  channel?: string
}

export interface EntityEventMessage {
  type: 'entity_event'
  entity_type: EntityType
  event_type: EntityEventType
  entity_id: number
  data: Record<string, unknown>
  timestamp: string
  metadata: Record<string, unknown> & { action: string }
  seq: number
}

export interface SystemEventMessage {
  type: 'system_event'
  level: SystemLevel
  message: string
  data: Record<string, unknown>
  timestamp: string
  seq: number
}

export type EventMessage = EntityEventMessage | SystemEventMessage

export interface ConnectionMessage {
  type: 'connection'
  status: 'connected' | 'subscribed' | 'unsubscribed' | 'refreshed'
  channel: string
  timestamp: string
  channels?: string[]
  epoch?: string
  last_seq?: number
  recovered?: boolean
  replayed?: number
  oldest_seq?: number
  /** On `refreshed`: when the connection's new token expires. */
  token_expires_at?: string
}

export interface ErrorMessage {
  type: 'error'
  code: string
  message: string
}

export function entityEventMessage(
  event: DomainEvent,
  seq: number,
  now: number,
): EntityEventMessage {
  return {
    type: 'entity_event',
    entity_type: event.entity_type,
    event_type: event.event_type,
    entity_id: event.entity_id,
    data: event.data,
    timestamp: iso(now),
    metadata: { action: event.action, ...event.metadata },
    seq,
  }
}

export function systemEventMessage(
  event: SystemEventDraft,
  seq: number,
  now: number,
): SystemEventMessage {
  return {
    type: 'system_event',
    level: event.level,
    message: event.message,
    data: event.data ?? {},
    timestamp: iso(now),
    seq,
  }
}

export function errorMessage(code: string, message: string): string {
  return JSON.stringify({ type: 'error', code, message } satisfies ErrorMessage)
}
