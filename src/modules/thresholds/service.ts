// Threshold rules: checks on a rule set, and the per-type defaults (stored, listed, replaced, removed).
import { asc, eq } from 'drizzle-orm'
import type { Services } from '../../context'
import { sensorTypeThresholds } from '../../db/schema'
import { InvalidFieldError, NotFoundError } from '../../lib/errors'
import { isPlainObject } from '../../lib/json-body'
import { iso } from '../../lib/time'
import { isVariableName } from '../readings/values'
import { NAME_RULE } from '../variables/model'
import { MAX_RULES, type Thresholds, type TypeThresholds } from './model'

const show = (value: unknown) => JSON.stringify(value)?.slice(0, 60) ?? String(value)

/** What each field of a rule may hold: a check and the sentence that says so. */
const RULE_FIELDS: Record<string, [(v: unknown) => boolean, string]> = {
  min: [
    (v) => v === null || (typeof v === 'number' && Math.abs(v) <= 1e6),
    'a number from -1000000 to 1000000, or null',
  ],
  max: [
    (v) => v === null || (typeof v === 'number' && Math.abs(v) <= 1e6),
    'a number from -1000000 to 1000000, or null',
  ],
  for_readings: [
    (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 100_000,
    'an integer from 1 to 100000',
  ],
  for_seconds: [
    (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 604_800,
    'an integer from 0 to 604800',
  ],
}

/**
 * Checks a rule set as sent, whole (the body of PUT /sensor-types/:tipo/thresholds, or a sensor's
 * `thresholds`), before Elysia's schema step, which would turn `11` or `[]` into `{}` and so wipe the
 * rules: an object keyed by variable names (any, seen yet or not), each a rule of known fields.
 */
export function checkRules(raw: unknown, field = 'thresholds') {
  if (!isPlainObject(raw))
    throw new InvalidFieldError(
      field,
      `${field} must be an object of rules keyed by variable, such as {"temperatura":{"min":0,"max":40}}, not ${show(raw)}.`,
    )
  const names = Object.keys(raw)
  if (names.length > MAX_RULES)
    throw new InvalidFieldError(
      field,
      `${field} names ${names.length} variables; a rule set holds at most ${MAX_RULES}.`,
    )
  for (const name of names) {
    const at = `${field}.${name.slice(0, 80)}`
    if (!isVariableName(name))
      throw new InvalidFieldError(
        at,
        `"${name.slice(0, 80)}" in ${field} is not a variable name: use ${NAME_RULE}.`,
      )
    const rule = raw[name]
    if (!isPlainObject(rule))
      throw new InvalidFieldError(
        at,
        `${at} must be a rule such as {"min":0,"max":40,"for_readings":3}, not ${show(rule)}.`,
      )
    for (const [key, value] of Object.entries(rule)) {
      const spec = Object.hasOwn(RULE_FIELDS, key) ? RULE_FIELDS[key] : undefined
      if (!spec)
        throw new InvalidFieldError(
          `${at}.${key.slice(0, 80)}`,
          `${key.slice(0, 80)} is not a field of a threshold rule (${at}): use min, max, for_readings and for_seconds.`,
        )
      if (!spec[0](value))
        throw new InvalidFieldError(
          `${at}.${key}`,
          `${at}.${key} must be ${spec[1]}, not ${show(value)}.`,
        )
    }
  }
  checkThresholds(raw as Thresholds, field)
}

/** Every rule needs a bound, and min below max; `field` prefixes the name in the error. */
export function checkThresholds(value: Thresholds | null | undefined, field = 'thresholds') {
  if (!value) return
  for (const [variable, rule] of Object.entries(value)) {
    if (!rule) continue
    if (rule.min == null && rule.max == null)
      throw new InvalidFieldError(
        `${field}.${variable}`,
        `The ${variable} rule needs min, max or both.`,
      )
    if (rule.min != null && rule.max != null && rule.min >= rule.max)
      throw new InvalidFieldError(
        `${field}.${variable}.min`,
        `The ${variable} rule's min (${rule.min}) must be below its max (${rule.max}).`,
      )
  }
}

type Row = typeof sensorTypeThresholds.$inferSelect

const toDto = (row: Row): TypeThresholds => ({
  tipo: row.tipo,
  thresholds: row.thresholds as Thresholds,
  created_at: iso(row.created_at),
  updated_at: iso(row.updated_at),
})

export const listTypeThresholds = async ({ db }: Services) =>
  (await db.read.select().from(sensorTypeThresholds).orderBy(asc(sensorTypeThresholds.tipo))).map(
    toDto,
  )

export async function getTypeThresholds({ db }: Services, tipo: string) {
  const [row] = await db.read
    .select()
    .from(sensorTypeThresholds)
    .where(eq(sensorTypeThresholds.tipo, tipo))
  if (!row) throw new NotFoundError('Threshold defaults for sensor type', tipo)
  return toDto(row)
}

/** Replaces the defaults of a sensor type; announced as a system_event on anomalies and general. */
export async function putTypeThresholds(
  { emitter }: Services,
  tipo: string,
  thresholds: Thresholds,
) {
  checkThresholds(thresholds)
  const dto = await emitter.transact(async (tx) => {
    const now = Date.now()
    const [row] = await tx
      .insert(sensorTypeThresholds)
      .values({ tipo, thresholds, created_at: now, updated_at: now })
      .onConflictDoUpdate({
        target: sensorTypeThresholds.tipo,
        set: { thresholds, updated_at: now },
      })
      .returning()
    return toDto(row!)
  })
  await emitter.system({
    level: 'info',
    message: `Umbrales por defecto actualizados para el tipo ${tipo}`,
    data: { module: 'anomalies', tipo, thresholds },
    channel: 'anomalies',
  })
  return dto
}

export async function deleteTypeThresholds({ emitter }: Services, tipo: string) {
  await emitter.transact(async (tx) => {
    const [row] = await tx
      .delete(sensorTypeThresholds)
      .where(eq(sensorTypeThresholds.tipo, tipo))
      .returning()
    if (!row) throw new NotFoundError('Threshold defaults for sensor type', tipo)
  })
  await emitter.system({
    level: 'info',
    message: `Umbrales por defecto eliminados para el tipo ${tipo}`,
    data: { module: 'anomalies', tipo },
    channel: 'anomalies',
  })
}
