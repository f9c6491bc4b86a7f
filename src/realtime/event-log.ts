// The event log: hands out the deployment-wide seq, stores each frame as sent (a reading's `created` frame
// as a lean row, see reading-frames.ts), reads it back for replay.
import { and, asc, eq, gt, gte, lte, min, sql, type SQL } from 'drizzle-orm'
import { isSqlite, sqliteClient, type Tx } from '../db'
import { selectLists } from '../db/bulk'
import { pgExecute } from '../db/postgres'
import { prepared } from '../db/prepared'
import { events, eventMeta, readings } from '../db/schema'
import {
  entityEventMessage,
  systemEventMessage,
  type DomainEvent,
  type EventMessage,
  type SystemEventDraft,
} from './envelope'
import { routeById, routeSystemEvent, routingId, type EntityType } from './channels'
import { leanReading, readingColumns, readingFrame } from './reading-frames'

export type Draft =
  { kind: 'entity'; event: DomainEvent } | { kind: 'system'; event: SystemEventDraft }

export interface StoredEvent {
  seq: number
  /** Channel names wrapped in spaces (" readings readings:5 general "), so membership is one search. */
  channels: string
  /** The JSON frame, serialized once: published as is, stored (or rebuilt) and replayed identical. */
  payload: string
  message: EventMessage
}

export function encodeChannels(channels: string[]): string {
  return ` ${channels.join(' ')} `
}

export function inChannels(encoded: string, wanted: Iterable<string>): boolean {
  for (const channel of wanted) if (encoded.includes(` ${channel} `)) return true
  return false
}

/** Creates the sequence row on a new database; the epoch names this history for resuming clients. */
export async function ensureEventMeta(tx: Tx): Promise<{ epoch: string; lastSeq: number }> {
  await tx
    .insert(eventMeta)
    .values({ id: 1, epoch: crypto.randomUUID(), last_seq: 0, created_at: Date.now() })
    .onConflictDoNothing()
  const [row] = await tx.select().from(eventMeta).where(eq(eventMeta.id, 1))
  return { epoch: row!.epoch, lastSeq: row!.last_seq }
}

// Every write runs these two statements, straight on bun:sqlite: building and preparing them each time
// cost more than running them, and so did drizzle's placeholder filling per event row.
function prepareAppend(tx: Tx) {
  const client = sqliteClient(tx)
  return {
    bump: client.prepare(
      'update event_meta set last_seq = last_seq + ? where id = 1 returning last_seq as lastSeq, webhook_rev as webhookRev',
    ),
    insert: client.prepare(
      'insert into events (seq, channels, payload, created_at, reading_id) values (?, ?, ?, ?, ?)',
    ),
  }
}

const appendStatements = (tx: Tx) => prepared(tx, 'append-events', () => prepareAppend(tx))

export interface Appended {
  stored: StoredEvent[]
  /** event_meta.webhook_rev as of this transaction (-1 when nothing was appended). */
  webhookRev: number
}

/**
 * A draft's frame and channels; `seq` is the frame's last field (see envelope.ts). `readingId`: the
 * frame is stored lean, rebuilt from that reading.
 */
function frame(draft: Draft, seq: number, now: number, sqlite: boolean) {
  if (draft.kind === 'system')
    return {
      message: systemEventMessage(draft.event, seq, now) as EventMessage,
      channels: encodeChannels(routeSystemEvent(draft.event.channel)),
      readingId: null,
    }
  const { event } = draft
  return {
    message: entityEventMessage(event, seq, now) as EventMessage,
    channels: entityChannels(event.entity_type, event.entity_id, event.data.sensor_id),
    readingId: leanReading(event, sqlite),
  }
}

/**
 * An entity event's encoded channels, kept per entity type and the id they name (the sensor's, for
 * its data): a batch's events name the same few sensors over and over.
 */
const routed = new Map<EntityType, Map<number, string>>()
/** Ids kept per entity type at once (a fleet's sensors, its locations). */
const ROUTED_MAX = 100_000
function entityChannels(type: EntityType, entityId: number, sensorId?: number | null) {
  const id = routingId(type, entityId, sensorId)
  if (id === undefined) return encodeChannels(routeById(type, id))
  let byId = routed.get(type)
  if (!byId) routed.set(type, (byId = new Map()))
  let channels = byId.get(id)
  if (channels === undefined) {
    if (byId.size >= ROUTED_MAX) byId.clear()
    byId.set(id, (channels = encodeChannels(routeById(type, id))))
  }
  return channels
}

/** Gives the drafts consecutive seqs and writes them, inside the caller's transaction. */
export async function appendEvents(tx: Tx, drafts: Draft[], now = Date.now()): Promise<Appended> {
  if (drafts.length === 0) return { stored: [], webhookRev: -1 }
  if (!isSqlite(tx)) return appendPostgres(tx, drafts, now)
  const statements = appendStatements(tx)
  const row = statements.bump.get(drafts.length) as { lastSeq: number; webhookRev: number }
  let seq = row.lastSeq - drafts.length
  const stored = drafts.map((draft): StoredEvent => {
    seq += 1
    const { message, channels, readingId } = frame(draft, seq, now, true)
    const payload = JSON.stringify(message)
    statements.insert.run(seq, channels, readingId === null ? payload : '', now, readingId)
    return { seq, channels, payload, message }
  })
  return { stored, webhookRev: row.webhookRev }
}

/**
 * PostgreSQL: the event_meta row stays locked from the seq bump to COMMIT (that is what keeps seqs
 * gap-free and in commit order across writers), so everything else is done before it: frames are
 * serialized with seq 0, then one statement bumps the seq and inserts the rows, each frame's seq
 * written into its text there. One round trip under that lock instead of two plus the serializing.
 */
async function appendPostgres(tx: Tx, drafts: Draft[], now: number): Promise<Appended> {
  const n = drafts.length
  const framed = drafts.map((draft) => {
    const { message, channels, readingId } = frame(draft, 0, now, false)
    // `..."seq":0}`: the text before the 0, to which the seq and the closing brace are added.
    return { message, channels, readingId, head: JSON.stringify(message).slice(0, -2) }
  })
  // A lean row's frame is not sent: the event row stores '' and the reading's id.
  const stores = (f: (typeof framed)[number]) => (f.readingId === null ? f.head : '')
  // The frames as column lists (src/db/bulk.ts); as a JSON array if a channel name holds a separator.
  const rows =
    selectLists(framed, [
      { type: 'integer', of: (_, i) => i + 1 },
      { type: 'text', of: (f) => f.channels },
      { type: 'text', of: stores },
      { type: 'bigint', of: (f) => f.readingId },
    ]) ??
    sql`select * from json_to_recordset(${JSON.stringify(
      framed.map((f, i) => ({
        ord: i + 1,
        channels: f.channels,
        head: stores(f),
        reading_id: f.readingId,
      })),
    )}::text::json) as e(ord int, channels text, head text, reading_id bigint)`
  const [row] = await pgExecute(
    tx,
    sql`
    with bumped as (
      update event_meta set last_seq = last_seq + ${n} where id = 1 returning last_seq, webhook_rev
    ), appended as (
      insert into events (seq, channels, payload, created_at, reading_id)
      select b.last_seq - ${n} + e.ord, e.channels,
        case when e.reading_id is null then e.head || (b.last_seq - ${n} + e.ord)::text || '}' else '' end,
        ${now}, e.reading_id
      from bumped b, (${rows}) as e(ord, channels, head, reading_id)
    )
    select last_seq, webhook_rev from bumped`,
  )
  let seq = Number(row!.last_seq) - n
  const stored = framed.map(({ message, channels, head }): StoredEvent => {
    seq += 1
    message.seq = seq
    return { seq, channels, payload: `${head}${seq}}`, message }
  })
  return { stored, webhookRev: Number(row!.webhook_rev) }
}

export interface LogRow {
  seq: number
  channels: string
  payload: string
}

/**
 * Event rows in seq order, each with its frame as sent: a lean row's rebuilt from its reading, read in
 * the same statement (so in the same committed state as the row; a change to the reading materializes
 * the frame in its own transaction first).
 */
async function readLog(db: Tx, where: SQL | undefined, limit: number): Promise<LogRow[]> {
  const rows = await db
    .select({
      seq: events.seq,
      channels: events.channels,
      payload: events.payload,
      at: events.created_at,
      reading_id: events.reading_id,
      ...readingColumns,
    })
    .from(events)
    .leftJoin(readings, eq(readings.id, events.reading_id))
    .where(where)
    .orderBy(asc(events.seq))
    .limit(limit)
  return rows.map(({ seq, channels, payload, at, reading_id: id, ...r }) => {
    if (id === null) return { seq, channels, payload }
    if (r.sensor_id === null || r.values === null || r.timestamp === null)
      throw new Error(`event ${seq} is stored without its frame and its reading ${id} is gone`)
    const { sensor_id, values, timestamp } = r
    const row = { id, sensor_id, values, timestamp, created_at: r.reading_created_at! }
    return { seq, channels, payload: readingFrame(seq, at, row) }
  })
}

/** Events with after < seq <= upTo, in seq order, at most `limit` rows (before channel filtering). */
export const readRange = (db: Tx, after: number, upTo: number, limit: number) =>
  readLog(db, and(gt(events.seq, after), lte(events.seq, upTo)), limit)

/** Events with seq > after, in seq order, at most `limit` rows (what a publisher has not seen yet). */
export const readAfter = (db: Tx, after: number, limit: number) =>
  readLog(db, gt(events.seq, after), limit)

/** The smallest seq still retained, or undefined when the log is empty. */
export async function oldestSeq(db: Tx): Promise<number | undefined> {
  const [row] = await db.select({ oldest: min(events.seq) }).from(events)
  return row?.oldest ?? undefined
}

/**
 * The newest seq that retention lets go: past the count, or in the oldest run of events all older than
 * the age limit. Read in seq order up to the first event young enough to keep (the rows read are the ones
 * about to go): no index on created_at is written at ingest, and an event is never let go by age before
 * it is old enough, even where the clock stepped back between two appends.
 */
export async function pruneCutoff(
  db: Tx,
  lastSeq: number,
  keepCount: number,
  keepSeconds: number,
  now = Date.now(),
): Promise<number> {
  const [young] = await db
    .select({ seq: events.seq })
    .from(events)
    .where(gte(events.created_at, now - keepSeconds * 1000))
    .orderBy(asc(events.seq))
    .limit(1)
  // No young event: every event up to the published seq is old (later ones get higher seqs).
  return Math.max(lastSeq - keepCount, young ? young.seq - 1 : lastSeq)
}

/** Deletes the events with seq <= upTo (one bounded batch, so writers wait only briefly). */
export async function deleteThrough(tx: Tx, upTo: number): Promise<void> {
  await tx.delete(events).where(lte(events.seq, upTo))
}
