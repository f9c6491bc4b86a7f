// Liveness: a sensor is online from its first reading, offline once silent longer than its limit (its
// own offline_after, else its type's, else SENSOR_OFFLINE_AFTER; 0 = never), online again with its
// next reading. Going offline opens an `offline` anomaly that the next reading resolves. Decided in
// write transactions, which are serialized across instances, so one instance decides, once.
import { and, asc, eq, getTableColumns, inArray, sql } from 'drizzle-orm'
import type { Services } from '../../context'
import { isSqlite, type Tx } from '../../db'
import { anyId, rawRun, selectByIds } from '../../db/prepared'
import { anomalies, sensors, sensorTypes } from '../../db/schema'
import { insertOne, updateMany } from '../../lib/crud'
import { NotFoundError } from '../../lib/errors'
import { iso } from '../../lib/time'
import type { Emit } from '../../realtime/emitter'
import { anomalyResource, transition } from '../anomalies/service'
import { sensorResource } from '../sensors/service'
import type { TypeLiveness } from './model'

type Status = (typeof sensors.$inferSelect)['status']
type SensorRow = typeof sensors.$inferSelect

/** The variable an offline anomaly names: its value is the seconds since the sensor was last seen. */
export const OFFLINE_VARIABLE = 'last_seen'
export const LIVENESS_RULE = 'liveness'
/** How often each instance looks for sensors that went silent, seconds. */
export const SWEEP_SECONDS = 1

/** The status of each of these sensors (missing ones are absent), read in the caller's transaction. */
export async function sensorStatuses(tx: Tx, ids: readonly number[]) {
  const rows = await selectByIds(tx, 'sensor-status', [...new Set(ids)], (match) =>
    tx.select({ id: sensors.id, status: sensors.status }).from(sensors).where(match(sensors.id)),
  )
  return new Map<number, Status>(rows.map((row) => [row.id, row.status]))
}

const announce = (emit: Emit, row: SensorRow, liveness: 'online' | 'offline') =>
  emit({
    entity_type: 'sensor',
    event_type: 'updated',
    entity_id: row.id,
    data: sensorResource.toDto(row),
    action: 'update_sensor',
    metadata: { liveness },
  })

/**
 * last_seen never moves back. On PostgreSQL batches of one sensor may commit in another order than
 * their `now` (readings are written side by side), so the newer of the two wins.
 */
const seenAt = (tx: Tx, now: number) =>
  isSqlite(tx) ? now : (sql`greatest(${sensors.last_seen}, ${now})` as unknown as number)

/**
 * The sensors of a stored batch were heard from at `now`: last_seen moves (no event), and those that
 * were unknown or offline become online (a sensor `updated` event each) with their offline anomalies
 * resolved. Runs in the transaction that stores the readings.
 */
export async function markSeen(tx: Tx, emit: Emit, statuses: Map<number, Status>, now: number) {
  const online: number[] = []
  const back: number[] = []
  for (const [id, status] of statuses) (status === 'online' ? online : back).push(id)
  if (isSqlite(tx)) {
    const touch = rawRun(tx, 'liveness-seen', () =>
      tx
        .update(sensors)
        .set({ last_seen: sql.placeholder('now') as never })
        .where(eq(sensors.id, sql.placeholder('id'))),
    )
    for (const id of online) touch({ id, now })
  } else if (online.length > 0)
    await tx
      .update(sensors)
      .set({ last_seen: seenAt(tx, now) })
      .where(anyId(sensors.id, online))
  if (back.length === 0) return
  const rows = await tx
    .update(sensors)
    .set({ status: 'online', last_seen: seenAt(tx, now) })
    .where(inArray(sensors.id, back))
    .returning()
  for (const row of rows.sort((a, b) => a.id - b.id)) announce(emit, row, 'online')
  const open = await tx
    .select()
    .from(anomalies)
    .where(
      and(
        inArray(anomalies.sensor_id, back),
        eq(anomalies.rule, LIVENESS_RULE),
        inArray(anomalies.status, ['open', 'acknowledged']),
      ),
    )
    .orderBy(asc(anomalies.id))
  // A fleet back after a network outage: one statement on PostgreSQL for all of them.
  await updateMany(
    tx,
    emit,
    anomalyResource,
    open.map((row) => ({
      id: row.id,
      values: { ...transition(row.id, row, 'resolved', now), last_seen: now, updated_at: now },
    })),
  )
}

/** A sensor's limit in seconds: its own, else its type's, else the deployment's (0 = never). */
const limitOf = (fallback: number) =>
  sql<number>`coalesce(${sensors.offline_after}, (select "sensor_types"."offline_after" from "sensor_types" where "sensor_types"."tipo" = "sensors"."tipo"), ${fallback})`

/** Online sensors silent past their limit at `now`. */
const overdue = (fallback: number, now: number) =>
  and(
    eq(sensors.status, 'online'),
    sql`${limitOf(fallback)} > 0`,
    sql`"sensors"."last_seen" + cast(${limitOf(fallback)} as bigint) * 1000 < ${now}`,
  )

/**
 * Turns every online sensor silent past its limit offline: a sensor `updated` event and an
 * `anomaly_detected` (kind offline) each. A cheap read finds whether there is anything to do; the
 * decision is a conditional UPDATE in a write transaction, so of several instances sweeping at once
 * exactly one turns a sensor offline, and only once.
 */
export async function sweepOffline(services: Services, now = Date.now()) {
  const fallback = services.intelligence.options.sensorOfflineAfter
  const [any] = await services.db.read
    .select({ id: sensors.id })
    .from(sensors)
    .where(overdue(fallback, now))
    .limit(1)
  if (!any) return 0
  return services.emitter.transact(async (tx, emit) => {
    const rows = await tx
      .update(sensors)
      .set({ status: 'offline' })
      .where(overdue(fallback, now))
      .returning({ ...getTableColumns(sensors), limit: limitOf(fallback) })
    for (const { limit, ...row } of rows.sort((a, b) => a.id - b.id)) {
      announce(emit, row, 'offline')
      const silent = Math.round((now - row.last_seen!) / 100) / 10
      await insertOne(
        tx,
        emit,
        anomalyResource,
        {
          sensor_id: row.id,
          reading_id: null,
          variable: OFFLINE_VARIABLE,
          value: silent,
          severity: 'major',
          status: 'open',
          rule: LIVENESS_RULE,
          kind: 'offline',
          expected_min: null,
          expected_max: Number(limit),
          message: `No reading for ${silent} s (the limit is ${limit} s); last seen ${iso(row.last_seen!)}.`,
          count: 1,
          first_seen: now,
          last_seen: now,
          resolved_at: null,
          acknowledged_at: null,
          created_at: now,
          updated_at: now,
        },
        'anomaly_detected',
      )
    }
    return rows.length
  })
}

/** Sweeps every SWEEP_SECONDS until the intelligence runtime stops (a restart sweeps again at once). */
export function startLiveness(services: Services) {
  services.intelligence.every(SWEEP_SECONDS, () => sweepOffline(services), 'liveness sweep')
}

type TypeRow = typeof sensorTypes.$inferSelect

const toDto = (row: TypeRow): TypeLiveness => ({
  tipo: row.tipo,
  offline_after: row.offline_after,
  created_at: iso(row.created_at),
  updated_at: iso(row.updated_at),
})

export const listTypeLiveness = async ({ db }: Services) =>
  (await db.read.select().from(sensorTypes).orderBy(asc(sensorTypes.tipo))).map(toDto)

export async function getTypeLiveness({ db }: Services, tipo: string) {
  const [row] = await db.read.select().from(sensorTypes).where(eq(sensorTypes.tipo, tipo))
  if (!row) throw new NotFoundError('Liveness default for sensor type', tipo)
  return toDto(row)
}

/** Sets how long sensors of a tipo may stay silent; announced as a system_event on sensors and general. */
export async function putTypeLiveness({ emitter }: Services, tipo: string, offlineAfter: number) {
  const dto = await emitter.transact(async (tx) => {
    const now = Date.now()
    const [row] = await tx
      .insert(sensorTypes)
      .values({ tipo, offline_after: offlineAfter, created_at: now, updated_at: now })
      .onConflictDoUpdate({
        target: sensorTypes.tipo,
        set: { offline_after: offlineAfter, updated_at: now },
      })
      .returning()
    return toDto(row!)
  })
  await emitter.system({
    level: 'info',
    message: `Límite de silencio actualizado para el tipo ${tipo}: ${offlineAfter} s`,
    data: { module: 'liveness', tipo, offline_after: offlineAfter },
    channel: 'sensors',
  })
  return dto
}

export async function deleteTypeLiveness({ emitter }: Services, tipo: string) {
  await emitter.transact(async (tx) => {
    const [row] = await tx.delete(sensorTypes).where(eq(sensorTypes.tipo, tipo)).returning()
    if (!row) throw new NotFoundError('Liveness default for sensor type', tipo)
  })
  await emitter.system({
    level: 'info',
    message: `Límite de silencio eliminado para el tipo ${tipo}`,
    data: { module: 'liveness', tipo },
    channel: 'sensors',
  })
}
