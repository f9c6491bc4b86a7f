// Threshold rules: checks on a rule set, and the per-type defaults (stored, listed, replaced, removed).
import { asc, eq } from 'drizzle-orm'
import type { Services } from '../../context'
import { sensorTypeThresholds } from '../../db/schema'
import { InvalidFieldError, NotFoundError } from '../../lib/errors'
import { iso } from '../../lib/time'
import type { Thresholds, TypeThresholds } from './model'

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
