// Location use cases; deleting a location detaches its sensors (each gets an `updated` event).
import { asc, eq, sql } from 'drizzle-orm'
import type { Services } from '../../context'
import { locations, sensors } from '../../db/schema'
import {
  defined,
  deleteOne,
  findOne,
  findPage,
  insertOne,
  updateOne,
  type Resource,
} from '../../lib/crud'
import { iso } from '../../lib/time'
import { sensorResource } from '../sensors/service'
import type { Location, LocationCreate, LocationPatch, LocationQuery } from './model'

type Row = typeof locations.$inferSelect

export const locationResource: Resource<Row, Location> = {
  table: locations,
  label: 'Location',
  entityType: 'location',
  toDto: (row) => ({
    id: row.id,
    nombre: row.nombre,
    descripcion: row.descripcion,
    latitud: row.latitud,
    longitud: row.longitud,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  }),
}

/** name contains text, ignoring case on either database, with the wildcards in text taken literally. */
const nameContains = (text: string) =>
  sql`lower(${locations.nombre}) LIKE lower(${`%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`}) ESCAPE '\\'`

export const listLocations = ({ db }: Services, q: LocationQuery) =>
  findPage(
    db.read,
    locationResource,
    q.nombre ? nameContains(q.nombre) : undefined,
    [asc(locations.id)],
    q.limit,
    q.offset,
  )

export const getLocation = ({ db }: Services, id: number) => findOne(db.read, locationResource, id)

/** A whole location as stored: optional fields it leaves out cleared. */
const wholeLocation = (input: LocationCreate) => ({
  descripcion: null,
  latitud: null,
  longitud: null,
  ...input,
})

export const createLocation = ({ emitter }: Services, input: LocationCreate) =>
  emitter.transact((tx, emit) => {
    const now = Date.now()
    return insertOne(tx, emit, locationResource, {
      ...wholeLocation(input),
      created_at: now,
      updated_at: now,
    })
  })

/** PUT: the body is the whole location; optional fields left out are cleared. */
export const replaceLocation = ({ emitter }: Services, id: number, input: LocationCreate) =>
  emitter.transact((tx, emit) =>
    updateOne(tx, emit, locationResource, id, { ...wholeLocation(input), updated_at: Date.now() }),
  )

export const patchLocation = ({ emitter }: Services, id: number, patch: LocationPatch) =>
  emitter.transact((tx, emit) =>
    updateOne(tx, emit, locationResource, id, { ...defined(patch), updated_at: Date.now() }),
  )

export const deleteLocation = ({ emitter }: Services, id: number) =>
  emitter.transact(async (tx, emit) => {
    const now = Date.now()
    const detached = await tx
      .update(sensors)
      .set({ location_id: null, updated_at: now })
      .where(eq(sensors.location_id, id))
      .returning()
    const location = await deleteOne(tx, emit, locationResource, id)
    for (const row of detached) {
      emit({
        entity_type: 'sensor',
        event_type: 'updated',
        entity_id: row.id,
        data: sensorResource.toDto(row),
        action: 'update_sensor',
        metadata: { reason: 'location_deleted', location_id: id },
      })
    }
    return location
  })
