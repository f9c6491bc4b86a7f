// Turns an MQTT message (topic + payload bytes) into reading bodies for the readings service, or says why not.
import { iso, parseIso, readingTimeProblem } from '../../lib/time'
import { MAX_MEASUREMENTS, type ReadingCreate } from '../../modules/readings/model'
import { isVariableName, physicalBounds, type Values } from '../../modules/readings/values'
import { NAME_RULE } from '../../modules/variables/model'

export type RejectReason =
  | 'bad_topic'
  | 'too_large'
  | 'not_json'
  | 'invalid_payload'
  | 'out_of_range'
  | 'unknown_sensor'
  | 'store_error'

export class Rejection extends Error {
  constructor(
    readonly reason: RejectReason,
    message: string,
  ) {
    super(message)
  }
}

/** Largest payload taken: an array of MAX_ITEMS timestamped readings fits well under it. */
export const MAX_PAYLOAD_BYTES = 2 * 1024 * 1024
export const MAX_ITEMS = 10_000
/** Epoch numbers below this are seconds, above it milliseconds (1e11 s is the year 5138; 1e11 ms is 1973). */
const EPOCH_SECONDS_BELOW = 1e11

/** Position of the sensor id level in a topic filter: its first `+` (after any `$share/<group>/`). */
export function sensorLevel(filter: string): number {
  return filter
    .replace(/^\$share\/[^/]+\//, '')
    .split('/')
    .indexOf('+')
}

export function sensorIdOf(topic: string, level: number): number {
  const text = topic.split('/')[level] ?? ''
  const id = /^[1-9]\d{0,15}$/.test(text) ? Number(text) : NaN
  if (!Number.isSafeInteger(id))
    throw new Rejection(
      'bad_topic',
      `Topic "${topic.slice(0, 200)}" has no sensor id: level ${level + 1} must be a positive integer such as sensors/5/readings.`,
    )
  return id
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const describe = (value: unknown) => JSON.stringify(value)?.slice(0, 60) ?? String(value)

/** Named measurements, any names (null = not measured); at least one. */
function values(input: Record<string, unknown>, at: string): Values {
  const out: Values = {}
  let count = 0
  for (const [key, value] of Object.entries(input)) {
    if (!isVariableName(key))
      throw new Rejection(
        'invalid_payload',
        `${at}${key.slice(0, 80)} is not a measurement name: use ${NAME_RULE}.`,
      )
    if (value === null) continue
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw new Rejection(
        'invalid_payload',
        `${at}${key} must be a finite number or null, not ${describe(value)}.`,
      )
    const bounds = physicalBounds(key)
    if (bounds && (value < bounds.minimum || value > bounds.maximum))
      throw new Rejection(
        'out_of_range',
        `${at}${key} ${value} is outside ${bounds.minimum}..${bounds.maximum}: check the sensor.`,
      )
    out[key] = value
    count += 1
  }
  if (count === 0)
    throw new Rejection(
      'invalid_payload',
      `${at || 'The payload '}has no measurement: send numbers such as {"temperatura":23.5,"co2":415}.`,
    )
  if (count > MAX_MEASUREMENTS)
    throw new Rejection(
      'invalid_payload',
      `${at || 'The payload '}has ${count} measurements; a reading carries at most ${MAX_MEASUREMENTS}.`,
    )
  return out
}

function instant(ts: unknown, at: string, now: number): number {
  let ms: number | undefined
  if (typeof ts === 'number' && Number.isFinite(ts) && ts >= 0)
    ms = Math.round(ts < EPOCH_SECONDS_BELOW ? ts * 1000 : ts)
  else if (typeof ts === 'string') ms = parseIso(ts)
  if (ms === undefined)
    throw new Rejection(
      'invalid_payload',
      `${at}ts ${describe(ts)} is not a time: use ISO 8601 (2025-07-20T10:30:00Z) or epoch seconds or milliseconds.`,
    )
  const problem = readingTimeProblem(ms, now)
  if (problem) throw new Rejection('out_of_range', `${at}ts ${describe(ts)}: ${problem}.`)
  return ms
}

/** One item: flat measurements `{temperatura, co2, …}` (server time) or `{ts, values: {…}}`. */
function item(input: unknown, sensorId: number, at: string, now: number): ReadingCreate {
  if (!isObject(input))
    throw new Rejection(
      'invalid_payload',
      `${at || 'The payload '}must be an object such as {"temperatura":23.5,"humedad":65.2}, not ${describe(input)}.`,
    )
  if (!('values' in input) && !('ts' in input))
    return { sensor_id: sensorId, values: values(input, at) }
  const { ts, values: inner, ...extra } = input
  const unexpected = Object.keys(extra)[0]
  if (unexpected !== undefined)
    throw new Rejection(
      'invalid_payload',
      `${at}${unexpected} is not expected beside ts and values: put measures inside values.`,
    )
  if (!isObject(inner))
    throw new Rejection(
      'invalid_payload',
      `${at}values must be an object such as {"temperatura":23.5}, not ${describe(inner)}.`,
    )
  return {
    sensor_id: sensorId,
    values: values(inner, `${at}values.`),
    timestamp: iso(instant(ts, at, now)),
  }
}

/** The readings a payload carries, in order; throws a Rejection naming what is wrong. */
export function parsePayload(payload: Uint8Array, sensorId: number, now = Date.now()) {
  if (payload.byteLength > MAX_PAYLOAD_BYTES)
    throw new Rejection(
      'too_large',
      `The payload has ${payload.byteLength} bytes; the limit is ${MAX_PAYLOAD_BYTES}: split it.`,
    )
  let body: unknown
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload))
  } catch {
    throw new Rejection(
      'not_json',
      'The payload is not UTF-8 JSON: send {"temperatura":23.5,"humedad":65.2}.',
    )
  }
  if (!Array.isArray(body)) return [item(body, sensorId, '', now)]
  if (body.length === 0 || body.length > MAX_ITEMS)
    throw new Rejection(
      'invalid_payload',
      `An array payload needs 1 to ${MAX_ITEMS} readings; this one has ${body.length}.`,
    )
  return body.map((entry, i) => item(entry, sensorId, `[${i}].`, now))
}
