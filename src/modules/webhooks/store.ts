// The dispatcher's database work: endpoint leases (conditional UPDATEs, so one instance sends an
// endpoint's deliveries at a time), the pending deliveries of an endpoint in outbox order, successes
// recorded in batches, and the delivery log pruned to its newest LOG_KEEP rows per endpoint.
import {
  and,
  asc,
  desc,
  eq,
  gt,
  inArray,
  isNull,
  lt,
  lte,
  ne,
  or,
  sql,
  type SQL,
} from 'drizzle-orm'
import { isSqlite, type Database, type Tx } from '../../db'
import { prepared } from '../../db/prepared'
import { webhookDeliveries, webhooks } from '../../db/schema'
import type { SendResult } from './sender'

export type Hook = typeof webhooks.$inferSelect
export type PendingRow = Pick<
  typeof webhookDeliveries.$inferSelect,
  'id' | 'msg_id' | 'payload' | 'attempts' | 'next_attempt_at' | 'first_attempt_at'
>

/** A successful send, waiting to be recorded. */
export interface Done {
  id: number
  at: number
  result: SendResult
}

/** Finished deliveries kept per endpoint for the delivery log; older ones are deleted by prune(). */
export const LOG_KEEP = 10_000
const PRUNE_BATCH = 1000

/** `owner` names this instance in leases; `leaseMs` is how long a claim or renewal holds. */
export function createStore(db: Database, owner: string, leaseMs: number) {
  const write = <T>(fn: (tx: Tx) => Promise<T>) => db.transaction(fn)
  /** Takes the endpoint's lease if nobody else holds a live one (a conditional UPDATE). */
  const claim = (id: number, now: number) =>
    write(async (tx) => {
      const rows = await tx
        .update(webhooks)
        .set({ lease_owner: owner, lease_until: now + leaseMs })
        .where(
          and(
            eq(webhooks.id, id),
            eq(webhooks.status, 'active'),
            or(
              isNull(webhooks.lease_owner),
              eq(webhooks.lease_owner, owner),
              lt(webhooks.lease_until, now),
            ),
          ),
        )
        .returning({ id: webhooks.id })
      return rows.length > 0
    })

  const renew = (id: number, now: number) =>
    write(async (tx) => {
      const rows = await tx
        .update(webhooks)
        .set({ lease_until: now + leaseMs })
        .where(and(eq(webhooks.id, id), eq(webhooks.lease_owner, owner)))
        .returning({ id: webhooks.id })
      return rows.length > 0
    })

  const release = (id: number) =>
    write((tx) =>
      tx
        .update(webhooks)
        .set({ lease_owner: null, lease_until: null })
        .where(and(eq(webhooks.id, id), eq(webhooks.lease_owner, owner))),
    )

  const loadHook = async (id: number): Promise<Hook | undefined> =>
    (await db.read.select().from(webhooks).where(eq(webhooks.id, id)).limit(1))[0]

  const pendingAfter = (id: number, after: number, limit: number): Promise<PendingRow[]> =>
    db.read
      .select({
        id: webhookDeliveries.id,
        msg_id: webhookDeliveries.msg_id,
        payload: webhookDeliveries.payload,
        attempts: webhookDeliveries.attempts,
        next_attempt_at: webhookDeliveries.next_attempt_at,
        first_attempt_at: webhookDeliveries.first_attempt_at,
      })
      .from(webhookDeliveries)
      .where(
        and(
          eq(webhookDeliveries.webhook_id, id),
          eq(webhookDeliveries.status, 'pending'),
          gt(webhookDeliveries.id, after),
        ),
      )
      .orderBy(asc(webhookDeliveries.id))
      .limit(limit)

  /** Records successful sends, in one transaction (SQLite: a prepared statement per row; PostgreSQL: one statement). */
  const recordDelivered = (batch: Done[]) =>
    write(async (tx) => {
      if (isSqlite(tx)) {
        const record = prepared(tx, 'webhook-delivered', () =>
          tx
            .update(webhookDeliveries)
            .set({
              status: 'delivered',
              attempts: sql`${webhookDeliveries.attempts} + 1`,
              first_attempt_at: sql`coalesce(${webhookDeliveries.first_attempt_at}, ${sql.placeholder('at')})`,
              last_attempt_at: sql`${sql.placeholder('at')}`,
              response_status: sql`${sql.placeholder('status')}`,
              response_ms: sql`${sql.placeholder('ms')}`,
              last_error: null,
              delivered_at: sql`${sql.placeholder('done')}`,
            })
            .where(eq(webhookDeliveries.id, sql.placeholder('id')))
            .prepare(),
        )
        for (const d of batch)
          await record.run({
            id: d.id,
            at: d.at,
            status: d.result.status ?? null,
            ms: d.result.ms,
            done: d.at + d.result.ms,
          })
        return
      }
      const rows = sql.join(
        batch.map(
          (d) =>
            sql`(${d.id}::bigint, ${d.at}::bigint, ${d.result.status ?? null}::int, ${d.result.ms}::int, ${d.at + d.result.ms}::bigint)`,
        ),
        sql`, `,
      )
      // PostgreSQL's drizzle runs raw SQL with execute (Tx is typed after SQLite's).
      await (tx as unknown as { execute(query: SQL): Promise<unknown> }).execute(sql`
        update ${webhookDeliveries} set
          status = 'delivered',
          attempts = ${webhookDeliveries.attempts} + 1,
          first_attempt_at = coalesce(${webhookDeliveries.first_attempt_at}, v.at),
          last_attempt_at = v.at,
          response_status = v.status,
          response_ms = v.ms,
          last_error = null,
          delivered_at = v.done
        from (values ${rows}) as v(id, at, status, ms, done)
        where ${webhookDeliveries.id} = v.id`)
    })

  /** Deletes finished deliveries past the newest `keep` of each endpoint, in short transactions. */
  const prune = async (stopped: () => boolean, keep = LOG_KEEP) => {
    const ids = await db.read.select({ id: webhooks.id }).from(webhooks)
    for (const { id } of ids) {
      const [cut] = await db.read
        .select({ id: webhookDeliveries.id })
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.webhook_id, id))
        .orderBy(desc(webhookDeliveries.id))
        .limit(1)
        .offset(keep)
      if (!cut) continue
      for (;;) {
        const batch = db.read
          .select({ id: webhookDeliveries.id })
          .from(webhookDeliveries)
          .where(
            and(
              eq(webhookDeliveries.webhook_id, id),
              lte(webhookDeliveries.id, cut.id),
              ne(webhookDeliveries.status, 'pending'),
            ),
          )
          .limit(PRUNE_BATCH)
        const removed = await write(
          async (tx) =>
            (
              await tx
                .delete(webhookDeliveries)
                .where(inArray(webhookDeliveries.id, batch))
                .returning({ id: webhookDeliveries.id })
            ).length,
        )
        if (removed < PRUNE_BATCH || stopped()) break
      }
    }
  }

  /** Every lease let go (SQLite: one file is one instance, so a killed process's leases are ours). */
  const clearLeases = () =>
    write((tx) => tx.update(webhooks).set({ lease_owner: null, lease_until: null }))

  /** Active endpoints and who holds each one's lease. */
  const activeHooks = () =>
    db.read
      .select({ id: webhooks.id, owner: webhooks.lease_owner, until: webhooks.lease_until })
      .from(webhooks)
      .where(eq(webhooks.status, 'active'))

  return {
    write,
    claim,
    renew,
    release,
    loadHook,
    pendingAfter,
    recordDelivered,
    prune,
    clearLeases,
    activeHooks,
  }
}

export type Store = ReturnType<typeof createStore>
