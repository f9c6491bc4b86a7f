// Sensor use cases; a sensor's location must exist, and deleting a sensor deletes its data.
import { and, asc, eq } from 'drizzle-orm'
import type { Services } from '../../context'
import type { Tx } from '../../db'
import { locations, readings, sensors } from '../../db/schema'
import {
  defined,
  deleteOne,
  findOne,
  findPage,
  insertOne,
  requireRows,
  updateOne,
  type Resource,
} from '../../lib/crud'
import { iso } from '../../lib/time'
import { materializeReadings } from '../../realtime/reading-frames'
import { checkThresholds } from '../thresholds/service'
import type { Thresholds } from '../thresholds/model'
import type { Sensor, SensorCreate, SensorPatch, SensorQuery } from './model'

type Row = typeof sensors.$inferSelect

export const sensorResource: Resource<Row, Sensor> = {
  table: sensors,
  label: 'Sensor',
  entityType: 'sensor',
  toDto: (row) => ({
    id: row.id,
    tipo: row.tipo,
    modelo: row.modelo,
    nombre: row.nombre,
    location_id: row.location_id,
    thresholds: (row.thresholds as Thresholds | null) ?? null,
    status: row.status,
    last_seen: row.last_seen === null ? null : iso(row.last_seen),
    offline_after: row.offline_after,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  }),
}

const checkLocation = (tx: Tx, locationId: number | null | undefined) =>
  locationId == null
    ? undefined
    : requireRows(
        tx,
        { table: locations, label: 'Location' },
        [locationId],
        () => 'location_id',
        'create it with POST /api/v1/locations, or leave location_id out.',
      )

/** 422 naming the field unless every sensor exists; `field(i)` names the i-th id's field. */
export const checkSensors = (
  tx: Tx,
  ids: number[],
  field: (index: number) => string = () => 'sensor_id',
  hint = 'create it with POST /api/v1/sensors first.',
) => requireRows(tx, sensorResource, ids, field, hint)

/** A whole sensor as stored: checked, optional fields it leaves out cleared. */
async function wholeSensor(tx: Tx, input: SensorCreate) {
  await checkLocation(tx, input.location_id)
  checkThresholds(input.thresholds)
  return { nombre: null, location_id: null, thresholds: null, offline_after: null, ...input }
}

export const listSensors = ({ db }: Services, q: SensorQuery) =>
  findPage(
    db.read,
    sensorResource,
    and(
      q.tipo ? eq(sensors.tipo, q.tipo) : undefined,
      q.location_id ? eq(sensors.location_id, q.location_id) : undefined,
      q.status ? eq(sensors.status, q.status) : undefined,
    ),
    [asc(sensors.id)],
    q.limit,
    q.offset,
  )

export const getSensor = ({ db }: Services, id: number) => findOne(db.read, sensorResource, id)

export const createSensor = ({ emitter }: Services, input: SensorCreate) =>
  emitter.transact(async (tx, emit) => {
    const values = await wholeSensor(tx, input)
    const now = Date.now()
    return insertOne(tx, emit, sensorResource, { ...values, created_at: now, updated_at: now })
  })

/** PUT: the body is the whole sensor; optional fields left out are cleared. */
export const replaceSensor = ({ emitter }: Services, id: number, input: SensorCreate) =>
  emitter.transact(async (tx, emit) => {
    const values = await wholeSensor(tx, input)
    return updateOne(tx, emit, sensorResource, id, { ...values, updated_at: Date.now() })
  })

export const patchSensor = ({ emitter }: Services, id: number, patch: SensorPatch) =>
  emitter.transact(async (tx, emit) => {
    await checkLocation(tx, patch.location_id)
    checkThresholds(patch.thresholds)
    return updateOne(tx, emit, sensorResource, id, { ...defined(patch), updated_at: Date.now() })
  })

/** Deletes the sensor and (by cascade) its readings, anomalies and predictions: one `deleted` event. */
export const deleteSensor = ({ emitter }: Services, id: number) =>
  emitter.transact(async (tx, emit) => {
    // The cascade takes the readings: their frames still in the log are written whole first.
    await materializeReadings(tx, eq(readings.sensor_id, id))
    return deleteOne(tx, emit, sensorResource, id)
  })
