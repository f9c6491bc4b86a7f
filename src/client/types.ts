// What the server sends, typed per entity: the wire envelope from src/realtime with each entity's REST shape as `data`.
import type { EntityType } from '../realtime/channels'
import type {
  ConnectionMessage,
  EntityEventMessage,
  ErrorMessage,
  SystemEventMessage,
} from '../realtime/envelope'
import type { Anomaly } from '../modules/anomalies/model'
import type { SensorLatest } from '../modules/latest/model'
import type { Location } from '../modules/locations/model'
import type { Prediction } from '../modules/predictions/model'
import type { Reading } from '../modules/readings/model'
import type { Sensor } from '../modules/sensors/model'
import type { Variable } from '../modules/variables/model'

export type { EntityType } from '../realtime/channels'
export type {
  ConnectionMessage,
  EntityEventMessage,
  ErrorMessage,
  SystemEventMessage,
} from '../realtime/envelope'
export type { Anomaly, Location, Prediction, Reading, Sensor, SensorLatest, Variable }

/** The entity each `entity_type` carries in `data` (as the REST API shows it). */
export interface EntityData {
  sensor: Sensor
  location: Location
  reading: Reading
  anomaly: Anomaly
  prediction: Prediction
}

/** The `event_type`s each entity can have. */
export interface EntityEventTypes {
  sensor: 'created' | 'updated' | 'deleted'
  location: 'created' | 'updated' | 'deleted'
  reading: 'created' | 'updated' | 'deleted'
  anomaly: 'anomaly_detected' | 'created' | 'updated' | 'deleted'
  prediction: 'created' | 'updated' | 'deleted' | 'prediction_completed'
}

/** An `entity_event` narrowed to one entity type (and optionally one event type). */
export type EntityEvent<
  E extends EntityType = EntityType,
  V extends EntityEventTypes[E] = EntityEventTypes[E],
> = {
  [K in E]: Omit<EntityEventMessage, 'entity_type' | 'event_type' | 'data'> & {
    entity_type: K
    event_type: V & EntityEventTypes[K]
    data: EntityData[K]
  }
}[E]

export type SystemEvent = SystemEventMessage
export type ServerEvent = EntityEvent | SystemEvent

export interface PongMessage {
  type: 'pong'
  timestamp?: string
}

/**
 * With `snapshot=latest`, right after the connection message: the latest values of every sensor the
 * connection's channels cover, as of event `seq`; the events that follow are those after `seq`.
 */
export interface SnapshotMessage {
  type: 'snapshot'
  seq: number
  data: SensorLatest[]
}

export type ServerMessage =
  ServerEvent | ConnectionMessage | ErrorMessage | PongMessage | SnapshotMessage
