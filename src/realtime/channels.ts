// Channel names, their validation, and the routing of each event to the channels that receive it.

export const CHANNELS = [
  'general',
  'sensors',
  'readings',
  'locations',
  'anomalies',
  'predictions',
] as const
export type BaseChannel = (typeof CHANNELS)[number]

export const ENTITY_TYPES = ['sensor', 'location', 'reading', 'anomaly', 'prediction'] as const
export type EntityType = (typeof ENTITY_TYPES)[number]

/** Channels that take a `:<id>` suffix, and what the id names. */
const SUB_CHANNELS: Record<string, 'sensor' | 'location'> = {
  sensors: 'sensor',
  readings: 'sensor',
  anomalies: 'sensor',
  predictions: 'sensor',
  locations: 'location',
}

const CHANNEL_OF: Record<EntityType, BaseChannel> = {
  sensor: 'sensors',
  location: 'locations',
  reading: 'readings',
  anomaly: 'anomalies',
  prediction: 'predictions',
}

const MAX_ID = Number.MAX_SAFE_INTEGER

/** True for `general`, the five entity channels and `<channel>:<positive id>`. */
export function isChannel(name: string): boolean {
  if ((CHANNELS as readonly string[]).includes(name)) return true
  const colon = name.indexOf(':')
  if (colon < 0 || !Object.hasOwn(SUB_CHANNELS, name.slice(0, colon))) return false
  const id = name.slice(colon + 1)
  return /^[1-9]\d{0,15}$/.test(id) && Number(id) <= MAX_ID
}

export const CHANNEL_HELP =
  'Channels are general, sensors, readings, locations, anomalies, predictions, or a sub-channel such as sensors:5, readings:5, anomalies:5, predictions:5, locations:3.'

/**
 * The channels an entity event goes to: its entity's channel, the matching sub-channels, and
 * general. Events about a sensor's data (readings, anomalies, predictions) also reach sensors:<id>.
 */
export function routeEntityEvent(
  entityType: EntityType,
  entityId: number,
  sensorId?: number | null,
) {
  return routeById(entityType, routingId(entityType, entityId, sensorId))
}

/**
 * The id an entity event's sub-channels name: a sensor's or a location's own, the sensor's for its
 * data (undefined: a data event with no sensor, which goes to no sub-channel).
 */
export function routingId(entityType: EntityType, entityId: number, sensorId?: number | null) {
  if (entityType === 'sensor' || entityType === 'location') return entityId
  return sensorId ?? undefined
}

/** routeEntityEvent's channels from the id routingId() gives. */
export function routeById(entityType: EntityType, id: number | undefined) {
  const base = CHANNEL_OF[entityType]
  if (id === undefined) return [base, 'general']
  if (entityType === 'sensor' || entityType === 'location')
    return [base, `${base}:${id}`, 'general']
  return [base, `${base}:${id}`, `sensors:${id}`, 'general']
}

/** System events go to general and, when named, to one more channel. */
export function routeSystemEvent(channel?: string) {
  return channel && channel !== 'general' ? [channel, 'general'] : ['general']
}

/** The sensors a snapshot covers: all of them, or these ids (none when empty). */
export type SnapshotCoverage = 'all' | number[]

/**
 * Which sensors' latest values a connection on these channels gets in its snapshot: the sensors whose
 * readings and liveness changes its stream carries. general, sensors and readings carry every
 * sensor's; sensors:<id> and readings:<id> that sensor's; anomalies, predictions and locations (and
 * their sub-channels) carry no readings, so they add none.
 */
export function snapshotCoverage(channels: Iterable<string>): SnapshotCoverage {
  const ids = new Set<number>()
  for (const channel of channels) {
    if (channel === 'general' || channel === 'sensors' || channel === 'readings') return 'all'
    const [base, id] = channel.split(':')
    if (id && (base === 'sensors' || base === 'readings')) ids.add(Number(id))
  }
  return [...ids].sort((a, b) => a - b)
}
