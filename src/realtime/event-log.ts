// The event log: hands out the deployment-wide seq, stores each frame as sent, reads it back for replay.
import { and, asc, eq, gt, lt, lte, max, min, sql } from 'drizzle-orm'
import { isSqlite, type Tx } from '../db'
import { bulkInsert } from '../db/bulk'
import { prepared } from '../db/prepared'
import { events, eventMeta } from '../db/schema'
import {
  entityEventMessage,
  systemEventMessage,
  type DomainEvent,
  type EventMessage,
  type SystemEventDraft,
} from './envelope'
import { routeEntityEvent, routeSystemEvent } from './channels'

export type Draft =
  { kind: 'entity'; event: DomainEvent } | { kind: 'system'; event: SystemEventDraft }

export interface StoredEvent {
  seq: number
  /** Channel names wrapped in spaces (" readings readings:5 general "), so membership is one search. */
  channels: string
  /** The JSON frame, serialized once: stored, replayed and published as is. */
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

interface RawStatement {
  get(...args: unknown[]): unknown
  run(...args: unknown[]): unknown
}

// Every write runs these two statements, straight on bun:sqlite: building and preparing them each time
// cost more than running them, and so did drizzle's placeholder filling per event row.
function prepareAppend(tx: Tx) {
  const client = (tx as unknown as { $client: { prepare(sql: string): RawStatement } }).$client
  return {
    bump: client.prepare(
      'update event_meta set last_seq = last_seq + ? where id = 1 returning last_seq as lastSeq, webhook_rev as webhookRev',
    ),
    insert: client.prepare(
      'insert into events (seq, channels, payload, created_at) values (?, ?, ?, ?)',
    ),
  }
}

const appendStatements = (tx: Tx) => prepared(tx, 'append-events', () => prepareAppend(tx))

export interface Appended {
  stored: StoredEvent[]
  /** event_meta.webhook_rev as of this transaction (-1 when nothing was appended). */
  webhookRev: number
}

/** Gives the drafts consecutive seqs and writes them, inside the caller's transaction. */
export async function appendEvents(tx: Tx, drafts: Draft[], now = Date.now()): Promise<Appended> {
  if (drafts.length === 0) return { stored: [], webhookRev: -1 }
  const statements = isSqlite(tx) ? appendStatements(tx) : undefined
  const [row] = statements
    ? [statements.bump.get(drafts.length) as { lastSeq: number; webhookRev: number }]
    : await tx
        .update(eventMeta)
        .set({ last_seq: sql`${eventMeta.last_seq} + ${drafts.length}` })
        .where(eq(eventMeta.id, 1))
        .returning({ lastSeq: eventMeta.last_seq, webhookRev: eventMeta.webhook_rev })
  let seq = row!.lastSeq - drafts.length
  const stored = drafts.map((draft): StoredEvent => {
    seq += 1
    if (draft.kind === 'system') {
      const message = systemEventMessage(draft.event, seq, now)
      const channels = encodeChannels(routeSystemEvent(draft.event.channel))
      return { seq, channels, payload: JSON.stringify(message), message }
    }
    const { event } = draft
    const message = entityEventMessage(event, seq, now)
    const channels = encodeChannels(
      routeEntityEvent(event.entity_type, event.entity_id, event.data.sensor_id),
    )
    return { seq, channels, payload: JSON.stringify(message), message }
  })
  if (statements) {
    for (const e of stored) statements.insert.run(e.seq, e.channels, e.payload, now)
    return { stored, webhookRev: row!.webhookRev }
  }
  const rows = stored.map((e) => ({
    seq: e.seq,
    channels: e.channels,
    payload: e.payload,
    created_at: now,
  }))
  await bulkInsert(tx, events, rows)
  return { stored, webhookRev: row!.webhookRev }
}

export interface LogRow {
  seq: number
  channels: string
  payload: string
}

/** Events with after < seq <= upTo, in seq order, at most `limit` rows (before channel filtering). */
export function readRange(db: Tx, after: number, upTo: number, limit: number): Promise<LogRow[]> {
  return db
    .select({ seq: events.seq, channels: events.channels, payload: events.payload })
    .from(events)
    .where(and(gt(events.seq, after), lte(events.seq, upTo)))
    .orderBy(asc(events.seq))
    .limit(limit)
}

/** Events with seq > after, in seq order, at most `limit` rows (what a publisher has not seen yet). */
export function readAfter(db: Tx, after: number, limit: number): Promise<LogRow[]> {
  return db
    .select({ seq: events.seq, channels: events.channels, payload: events.payload })
    .from(events)
    .where(gt(events.seq, after))
    .orderBy(asc(events.seq))
    .limit(limit)
}

/** The smallest seq still retained, or undefined when the log is empty. */
export async function oldestSeq(db: Tx): Promise<number | undefined> {
  const [row] = await db.select({ oldest: min(events.seq) }).from(events)
  return row?.oldest ?? undefined
}

/** The newest seq that retention lets go: past the count, or older than the age limit. */
export async function pruneCutoff(
  db: Tx,
  lastSeq: number,
  keepCount: number,
  keepSeconds: number,
  now = Date.now(),
): Promise<number> {
  const [row] = await db
    .select({ seq: max(events.seq) })
    .from(events)
    .where(lt(events.created_at, now - keepSeconds * 1000))
  return Math.max(lastSeq - keepCount, row?.seq ?? 0)
}

/** Deletes the events with seq <= upTo (one bounded batch, so writers wait only briefly). */
export async function deleteThrough(tx: Tx, upTo: number): Promise<void> {
  await tx.delete(events).where(lte(events.seq, upTo))
}
