// Assertions the REST and realtime suites share: the error envelope, "nothing changed", event shapes, deletion.
import { expect } from 'bun:test'
import { count } from 'drizzle-orm'
import type { SQLiteTable } from 'drizzle-orm/sqlite-core'
import { events } from '../src/db/schema'
import type { ApiResponse, TestServer, WsClient } from './helpers'

export const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/

/** Every error is JSON {"error": short code, "message": a sentence}, with the given status. */
export function expectError(res: ApiResponse, status: number, code?: string) {
  if (res.status !== status)
    throw new Error(`expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`)
  expect(res.headers.get('content-type') ?? '').toContain('application/json')
  expect(typeof res.body?.error).toBe('string')
  expect(typeof res.body?.message).toBe('string')
  expect(res.body.error).toMatch(/^[a-z_]+$/)
  expect(res.body.message.length).toBeGreaterThan(15)
  if (code) expect(res.body.error).toBe(code)
}

/** A 422 that names the field, both in `field` and in the sentence. */
export function expectInvalid(res: ApiResponse, field: string, code = 'validation_error') {
  expectError(res, 422, code)
  expect(res.body.field).toBe(field)
  expect(res.body.message).toContain(field.replace(/^.*\./, ''))
}

export async function rowCount(server: TestServer, table: SQLiteTable) {
  const [row] = await server.ctx.db.read.select({ n: count() }).from(table)
  return row!.n
}

/** The event log's size and the last published seq: both stay put when nothing happened. */
export async function eventState(server: TestServer) {
  return { rows: await rowCount(server, events), seq: server.ctx.realtime.publisher.lastSeq }
}

export async function expectNoNewEvents(
  server: TestServer,
  before: Awaited<ReturnType<typeof eventState>>,
) {
  expect(await eventState(server)).toEqual(before)
}

/** The next entity event about this entity, checked against the original's shape. */
export async function expectEntityEvent(
  client: WsClient,
  entityType: string,
  eventType: string,
  entityId: number,
  action: string,
) {
  const event = await client.event(
    (m) =>
      m.type === 'entity_event' &&
      m.entity_type === entityType &&
      m.event_type === eventType &&
      m.entity_id === entityId,
  )
  expect(event).toMatchObject({
    type: 'entity_event',
    entity_type: entityType,
    event_type: eventType,
    entity_id: entityId,
    metadata: { action },
  })
  expect(event.timestamp).toMatch(ISO_Z)
  expect(Number.isInteger(event.seq)).toBe(true)
  return event
}

/** Runs `run` and checks it left `table`'s row count and the event log as they were. */
export async function expectUnchanged(
  server: TestServer,
  table: SQLiteTable,
  run: () => Promise<void>,
) {
  const before = await eventState(server)
  const stored = await rowCount(server, table)
  await run()
  expect(await rowCount(server, table)).toBe(stored)
  await expectNoNewEvents(server, before)
}

/**
 * DELETE `path`/<id> answers 204 with no body and emits `deleted` carrying the entity as it was;
 * afterwards the id is a 404 for GET and for a second DELETE.
 */
export async function expectDeleted(
  server: TestServer,
  client: WsClient,
  path: string,
  entityType: string,
  entity: { id: number },
) {
  const res = await fetch(`${server.base}${path}/${entity.id}`, { method: 'DELETE' })
  expect(res.status).toBe(204)
  expect(await res.text()).toBe('')
  const event = await expectEntityEvent(
    client,
    entityType,
    'deleted',
    entity.id,
    `delete_${entityType}`,
  )
  expect(event.data).toEqual(entity)
  expectError(await server.api('GET', `${path}/${entity.id}`), 404, 'not_found')
  expectError(await server.api('DELETE', `${path}/${entity.id}`), 404, 'not_found')
}

/**
 * GET `path`/<id> answers the entity; an unknown id is a 404 naming `label` and the id; an id that
 * is not a positive safe integer is a 422 naming `id` in the path.
 */
export async function expectFoundById(
  server: TestServer,
  path: string,
  label: string,
  entity: { id: number },
) {
  expect((await server.api('GET', `${path}/${entity.id}`)).body).toEqual(entity)
  const missing = await server.api('GET', `${path}/987654321`)
  expectError(missing, 404, 'not_found')
  expect(missing.body.message).toContain(`${label} 987654321`)
  for (const id of ['abc', '0', '-1', '1.5', '99999999999999999999', '9007199254740992']) {
    const res = await server.api('GET', `${path}/${id}`)
    expectInvalid(res, 'id')
    expect(res.body.location).toBe('path')
  }
}
