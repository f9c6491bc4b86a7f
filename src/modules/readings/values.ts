// The measurements of a reading: the rules a `values` object must follow (names, finite numbers, a cap),
// the original's top-level temperatura/humedad folded in, and the physical bounds of those two.
import { InvalidFieldError } from '../../lib/errors'
import { NAME_RULE, VARIABLE_NAME_RE } from '../variables/model'
import { HUMIDITY, MAX_MEASUREMENTS, TEMPERATURE } from './model'

const BOUNDS: Readonly<Record<string, { minimum: number; maximum: number }>> = {
  temperatura: TEMPERATURE,
  humedad: HUMIDITY,
}
/** Bounds of the original's two variables; any other variable (`constructor` too) has none. */
export const physicalBounds = (name: string) =>
  Object.hasOwn(BOUNDS, name) ? BOUNDS[name] : undefined
const bounded = (name: string) => name === 'temperatura' || name === 'humedad'

export type Values = Record<string, number>

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const show = (value: unknown) =>
  typeof value === 'number' ? String(value) : (JSON.stringify(value)?.slice(0, 60) ?? String(value))

/** Names already checked against the pattern (a fleet has few), so the hot path skips the regex. */
const goodNames = new Set<string>()
export const isVariableName = (name: string) => {
  if (goodNames.has(name)) return true
  if (!VARIABLE_NAME_RE.test(name)) return false
  if (goodNames.size < 10_000) goodNames.add(name)
  return true
}

/**
 * Checks a `values` object as sent (before Elysia's schema, which lets a pattern-keyed record through
 * and turns an array into an object): an object of at most MAX_MEASUREMENTS valid names, each a finite
 * number (or null where `nullable`: PATCH removes a measurement with null). `field` names it in the 422.
 */
export function checkValues(raw: unknown, field: string, nullable = false): void {
  if (!isObject(raw))
    throw new InvalidFieldError(
      field,
      `${field} must be an object of measurements such as {"co2":415,"presion":1013.2}, not ${show(raw)}.`,
    )
  let count = 0
  for (const name in raw) {
    count += 1
    if (!isVariableName(name))
      throw new InvalidFieldError(
        `${field}.${name.slice(0, 80)}`,
        `"${name.slice(0, 80)}" in ${field} is not a valid measurement name: use ${NAME_RULE}.`,
      )
    const value = raw[name]
    if (typeof value === 'number' && Number.isFinite(value)) continue
    if (value === null && nullable) continue
    throw new InvalidFieldError(
      `${field}.${name}`,
      `${field}.${name} must be a finite number${nullable ? ' (or null to remove it)' : ''}, not ${
        typeof value === 'number' ? `${value} (too large to store)` : show(value)
      }.`,
    )
  }
  if (count > MAX_MEASUREMENTS)
    throw new InvalidFieldError(
      field,
      `${field} has ${count} measurements; a reading carries at most ${MAX_MEASUREMENTS}: split it.`,
    )
}

/** A 422 when a bounded variable is outside its physical range. */
function checkBounds(name: string, value: number, field: string) {
  const { minimum, maximum } = physicalBounds(name)!
  if (value < minimum || value > maximum)
    throw new InvalidFieldError(
      field,
      `${field} ${value} is outside ${minimum}..${maximum}, the physical range of ${name}: check the sensor.`,
    )
}

/**
 * Every measurement of a reading body: its `values` (checked by checkValues) with the original's
 * top-level temperatura and humedad folded in (null or absent = not measured). The same name at the
 * top level and in `values` with different numbers is a 422; so is a reading that measures nothing.
 * `at` prefixes field names inside a batch (`[3].`).
 */
export function measurementsOf(
  input: { temperatura?: number | null; humedad?: number | null; values?: Values | null },
  at = '',
): Values {
  const out: Values = {}
  let count = 0
  const top = (name: 'temperatura' | 'humedad') => {
    const value = input[name]
    if (value === null || value === undefined) return
    checkBounds(name, value, `${at}${name}`)
    out[name] = value
    count += 1
  }
  top('temperatura')
  top('humedad')
  const values = input.values
  if (values)
    for (const name in values) {
      const value = values[name]!
      if (bounded(name)) {
        if (name in out) {
          if (out[name] !== value)
            throw new InvalidFieldError(
              `${at}values.${name}`,
              `${name} is given twice with different numbers (${out[name]} at the top level, ${value} in values): send it once.`,
            )
          continue
        }
        checkBounds(name, value, `${at}values.${name}`)
      }
      out[name] = value
      count += 1
    }
  if (count === 0)
    throw new InvalidFieldError(
      `${at}values`,
      `${at ? `Item ${at.slice(1, -2)}` : 'A reading'} needs at least one measurement: temperatura, humedad or values such as {"co2":415}.`,
    )
  if (count > MAX_MEASUREMENTS)
    throw new InvalidFieldError(
      `${at}values`,
      `${at ? `Item ${at.slice(1, -2)}` : 'The reading'} has ${count} measurements; a reading carries at most ${MAX_MEASUREMENTS}.`,
    )
  return out
}

/**
 * A PATCH applied to stored measurements: top-level temperatura/humedad and `values` entries set a
 * measurement, null removes it. The result follows the rules of measurementsOf.
 */
export function patchMeasurements(
  current: Values,
  patch: {
    temperatura?: number | null
    humedad?: number | null
    values?: Record<string, number | null>
  },
): Values {
  const merged: Record<string, number | null> = { ...current }
  for (const name of ['temperatura', 'humedad'] as const)
    if (patch[name] !== undefined) merged[name] = patch[name]
  for (const [name, value] of Object.entries(patch.values ?? {})) {
    const top = patch[name as 'temperatura']
    if (bounded(name) && top !== undefined && top !== value)
      throw new InvalidFieldError(
        `values.${name}`,
        `${name} is given twice with different values (${top} at the top level, ${value} in values): send it once.`,
      )
    merged[name] = value
  }
  const values: Values = {}
  for (const [name, value] of Object.entries(merged)) if (value !== null) values[name] = value
  return measurementsOf({ values })
}

/** The fields a reading body has; `id` (from a stored reading sent back) is ignored. */
const FIELDS = new Set(['sensor_id', 'temperatura', 'humedad', 'values', 'timestamp', 'id'])

/**
 * The checks a reading body needs before Elysia's schema step (see lib/json-body.ts): its `values`,
 * and no measurement outside them, which the schema would silently drop (`{"co2":415}` at the top level).
 */
export function checkReadingBody(item: unknown, at: string, nullable: boolean) {
  if (!isObject(item)) return
  for (const key in item) {
    if (FIELDS.has(key) || typeof item[key] !== 'number') continue
    throw new InvalidFieldError(
      `${at}${key.slice(0, 80)}`,
      `${key.slice(0, 80)} is not a field of a reading: measurements other than temperatura and humedad go inside values, such as {"values":{"co2":415}}.`,
    )
  }
  if (item.values !== undefined) checkValues(item.values, `${at}values`, nullable)
}

/**
 * Whether the names are in the order PostgreSQL's jsonb keeps them (shorter first, then byte order;
 * names are ASCII): only then is a reading read back from PostgreSQL listed as it was sent.
 */
export function jsonbOrdered(values: Values): boolean {
  let previous: string | undefined
  for (const name in values) {
    if (
      previous !== undefined &&
      (name.length < previous.length || (name.length === previous.length && name < previous))
    )
      return false
    previous = name
  }
  return true
}

/** The measurements in jsonb's order (the same object when they already are). */
export function inJsonbOrder(values: Values): Values {
  if (jsonbOrdered(values)) return values
  const out: Values = {}
  for (const name of Object.keys(values).sort((a, b) =>
    a.length !== b.length ? a.length - b.length : a < b ? -1 : 1,
  ))
    out[name] = values[name]!
  return out
}
