// The webhook outbox: inside every transaction that appends events, one delivery row per event and
// matching endpoint. The endpoints' filters are cached per instance and reloaded, inside that same
// transaction, whenever event_meta.webhook_rev (read back with the seq) differs from the cached one,
// so matching costs nothing extra when nothing changed and is never stale. A reload becomes the cache
// only once its transaction commits: a rolled-back one may have seen its own uncommitted changes.
import { inArray, sql } from 'drizzle-orm'
import { isSqlite, type Tx } from '../../db'
import { prepared } from '../../db/prepared'
import { webhookDeliveries, webhooks } from '../../db/schema'
import type { Outbox } from '../../realtime/emitter'
import { inChannels, type Appended, type StoredEvent } from '../../realtime/event-log'

interface Filter {
  id: number
  channels: string[]
  /** undefined: every type. */
  types: Set<string> | undefined
}

const INSERT_CHUNK = 500

/** The event type a filter names: the entity event's event_type, or system_event. */
const typeOf = (event: StoredEvent) =>
  event.message.type === 'system_event' ? 'system_event' : event.message.event_type

export const matches = (filter: Filter, event: StoredEvent) =>
  (!filter.types || filter.types.has(typeOf(event))) && inChannels(event.channels, filter.channels)

/** webhook-id of an event: the same for every endpoint and attempt, unique across databases (epoch). */
export const messageId = (epoch: string, seq: number) =>
  `msg_${epoch.replaceAll('-', '').slice(0, 12)}_${seq}`

function prepareInsert(tx: Tx) {
  return tx
    .insert(webhookDeliveries)
    .values({
      webhook_id: sql.placeholder('webhook_id'),
      seq: sql.placeholder('seq'),
      msg_id: sql.placeholder('msg_id'),
      payload: sql.placeholder('payload'),
      status: 'pending',
      attempts: 0,
      next_attempt_at: sql.placeholder('next_attempt_at'),
      created_at: sql.placeholder('created_at'),
    })
    .prepare()
}

interface Cache {
  revision: number
  filters: Filter[]
}

/** `wake` runs after a commit that wrote deliveries, with the endpoints they are for. */
export function createOutbox(
  epoch: string,
  wake: (ids: Set<number>) => void,
): Outbox & { filters(): number } {
  let cache: Cache = { revision: -1, filters: [] }

  /** Active and paused endpoints take new deliveries (paused ones hold them); disabled ones do not. */
  const load = async (tx: Tx) =>
    (
      await tx
        .select({ id: webhooks.id, channels: webhooks.channels, types: webhooks.event_types })
        .from(webhooks)
        .where(inArray(webhooks.status, ['active', 'paused']))
    ).map((row) => ({
      id: row.id,
      channels: row.channels,
      types: row.types.length > 0 ? new Set(row.types) : undefined,
    }))

  return {
    filters: () => cache.filters.length,
    async write(tx, { stored, webhookRev }) {
      // Per transaction: several may be in flight at once on PostgreSQL (readings of other sensors).
      let staged: Cache | undefined
      const written = new Set<number>()
      const committed = (wrote: boolean) => () => {
        if (staged && staged.revision > cache.revision) cache = staged
        if (wrote) wake(written)
      }
      let current = cache
      if (webhookRev !== cache.revision)
        current = staged = { revision: webhookRev, filters: await load(tx) }
      const filters = current.filters
      if (filters.length === 0) return committed(false)
      const now = Date.now()
      const rows = []
      for (const event of stored)
        for (const filter of filters)
          if (matches(filter, event)) {
            written.add(filter.id)
            rows.push({
              webhook_id: filter.id,
              seq: event.seq,
              msg_id: messageId(epoch, event.seq),
              payload: event.payload,
              status: 'pending' as const,
              attempts: 0,
              next_attempt_at: now,
              created_at: now,
            })
          }
      if (rows.length === 0) return committed(false)
      if (isSqlite(tx)) {
        const insert = prepared(tx, 'webhook-outbox', () => prepareInsert(tx))
        for (const row of rows) await insert.run(row)
      } else
        for (let i = 0; i < rows.length; i += INSERT_CHUNK)
          await tx.insert(webhookDeliveries).values(rows.slice(i, i + INSERT_CHUNK))
      return committed(true)
    },
  }
}
