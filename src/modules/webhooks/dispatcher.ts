// Works off the webhook outbox after commit. An instance sends an endpoint's deliveries only while it
// holds that endpoint's lease (a conditional UPDATE on the webhooks row, renewed while it works), so
// every delivery is sent by one instance and each endpoint gets its deliveries one at a time, in
// outbox order. A failed attempt is retried with exponential backoff and jitter; the endpoint waits
// behind it (order is kept). A delivery still failing WEBHOOK_RETRY_FOR after its first attempt is
// given up, and its endpoint disabled with a system_event on general.
import { and, eq } from 'drizzle-orm'
import type { Config } from '../../config'
import type { Database } from '../../db'
import { webhookDeliveries, webhooks } from '../../db/schema'
import type { Logger } from '../../lib/logger'
import type { Emitter } from '../../realtime/emitter'
import type { Sender, SendResult } from './sender'
import { bumpRevision, signingSecrets } from './service'
import { createStore, type Done, type Hook, type PendingRow } from './store'

/** A lease is renewed every RENEW_MS of work, and lasts at least this and always past a send's timeout. */
const MIN_LEASE_MS = 30_000
const RENEW_MS = 5_000
/** How often endpoints with work are looked for (another instance's deliveries, due retries). */
const POLL_MS = 1000
const PAGE = 100
/** A worker keeps its lease this long without work before letting go. */
const IDLE_MS = 2000
/** Successes are recorded in one transaction at most this often (or every PAGE of them). */
const FLUSH_MS = 100
/** A retry due sooner than this is waited for while holding the lease; a later one lets go. */
const HOLD_MS = 2000
/** The delivery log is pruned this often. */
const PRUNE_MS = 60_000

export interface DispatcherDeps {
  config: Readonly<Config>
  db: Database
  emitter: Emitter
  log: Logger
  sender: Sender
  /** Counts each attempt's outcome (and give-ups) for /metrics. */
  counted?: (outcome: 'delivered' | 'failed_attempt' | 'given_up') => void
}

/** The delay before retry number `attempt` (1 = the first retry): doubling from the base, capped, ±20 %. */
export function backoff(config: Readonly<Config>, attempt: number, random = Math.random()) {
  const { retryBaseMs, retryMaxMs } = config.webhooks
  const nominal = Math.min(retryBaseMs * 2 ** Math.min(attempt - 1, 40), retryMaxMs)
  return Math.round(nominal * (0.8 + 0.4 * random))
}

export function createDispatcher(deps: DispatcherDeps) {
  const { config, db, log, sender } = deps
  const owner = config.instanceId
  const workers = new Map<number, Promise<void>>()
  /** Wakes a worker waiting for new rows (or for its hook to change). */
  const wakers = new Map<number, () => void>()
  let timer: Timer | undefined
  let scanning: Promise<void> | undefined
  let scanAgain = false
  let stopped = true
  let stopping = new AbortController()

  // Longer than any send, so a lease never runs out while its holder is still sending.
  const store = createStore(db, owner, Math.max(MIN_LEASE_MS, config.webhooks.timeoutMs + 20_000))
  const { write, claim, renew, release, loadHook, pendingAfter } = store

  /** Records successes; a batch that could not be written is put back, to be tried again. */
  const flush = async (done: Done[]) => {
    if (done.length === 0) return
    const batch = done.splice(0)
    try {
      await store.recordDelivered(batch)
    } catch (error) {
      done.unshift(...batch)
      throw error
    }
  }

  /**
   * Records a failed attempt: the next one after a backoff, or, past WEBHOOK_RETRY_FOR since the
   * first attempt, gives up, disables the endpoint, cancels what waited behind, and says so on general.
   */
  const fail = async (hook: Hook, row: PendingRow, at: number, result: SendResult) => {
    const attempts = row.attempts + 1
    const first = row.first_attempt_at ?? at
    const common = {
      attempts,
      first_attempt_at: first,
      last_attempt_at: at,
      response_status: result.status ?? null,
      response_ms: result.ms,
      last_error: result.error ?? 'failed',
    }
    if (at - first < config.webhooks.retryForMs) {
      await write((tx) =>
        tx
          .update(webhookDeliveries)
          .set({ ...common, next_attempt_at: at + backoff(config, attempts) })
          .where(eq(webhookDeliveries.id, row.id)),
      )
      return
    }
    const reason = `Delivery ${row.id} failed for ${Math.round((at - first) / 1000)} s (${attempts} attempts); last error: ${common.last_error}`
    const host = new URL(hook.url).host
    await deps.emitter.transact(async (tx, _emit, system) => {
      await tx
        .update(webhookDeliveries)
        .set({ ...common, status: 'failed' })
        .where(eq(webhookDeliveries.id, row.id))
      await tx
        .update(webhookDeliveries)
        .set({ status: 'cancelled', last_error: 'not sent: the endpoint was disabled' })
        .where(
          and(eq(webhookDeliveries.webhook_id, hook.id), eq(webhookDeliveries.status, 'pending')),
        )
      await tx
        .update(webhooks)
        .set({
          status: 'disabled',
          disabled_reason: reason,
          lease_owner: null,
          lease_until: null,
          updated_at: at,
        })
        .where(eq(webhooks.id, hook.id))
      await bumpRevision(tx)
      system({
        level: 'error',
        message: `Webhook ${hook.id} (${host}) desactivado: sin respuesta correcta desde hace ${Math.round((at - first) / 60_000)} min`,
        data: {
          module: 'webhooks',
          kind: 'webhook_disabled',
          severity: 'high',
          status: 'open',
          webhook_id: hook.id,
          host,
          delivery_id: row.id,
          attempts,
          last_error: common.last_error,
          first_attempt_at: new Date(first).toISOString(),
        },
      })
    })
    deps.counted?.('given_up')
    log.warn('webhook disabled after failing too long', { webhook: hook.id, host, attempts })
  }

  /** Resolves on a wake for this endpoint, or after `ms`. */
  const pause = (id: number, ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(done, ms)
      function done() {
        clearTimeout(t)
        if (wakers.get(id) === done) wakers.delete(id)
        resolve()
      }
      wakers.get(id)?.()
      wakers.set(id, done)
    })

  /** Sends the endpoint's pending deliveries in order while holding its lease. */
  const work = async (id: number) => {
    const done: Done[] = []
    let leaseAt = Date.now()
    let lastFlush = Date.now()
    let idleSince: number | undefined
    // Rows sent but not yet recorded are skipped by id.
    let after = 0
    try {
      outer: while (!stopped) {
        const hook = await loadHook(id)
        if (!hook || hook.status !== 'active' || hook.lease_owner !== owner) break
        const rows = await pendingAfter(id, after, PAGE)
        if (rows.length === 0) {
          await flush(done)
          idleSince ??= Date.now()
          if (Date.now() - idleSince >= IDLE_MS) break
          await pause(id, 250)
          continue
        }
        idleSince = undefined
        const pageStarted = Date.now()
        for (const row of rows) {
          if (stopped) break outer
          let now = Date.now()
          // A page is at most POLL_MS old: a pause or a change of URL or secret on any instance shows within a second.
          if (now - pageStarted > POLL_MS) continue outer
          if (now - leaseAt > RENEW_MS) {
            if (!(await renew(id, now))) break outer
            leaseAt = now
          }
          if (row.next_attempt_at > now) {
            await flush(done)
            const wait = row.next_attempt_at - now
            if (wait > HOLD_MS) break outer
            await pause(id, wait)
            continue outer
          }
          now = Date.now()
          const result = await sender.send(
            hook.url,
            signingSecrets(hook, now),
            row.msg_id,
            row.payload,
            stopping.signal,
          )
          // Cut short by a stop: not an attempt of the endpoint's; it is sent again after the restart.
          if (!result.ok && stopped) break outer
          deps.counted?.(result.ok ? 'delivered' : 'failed_attempt')
          if (result.ok) {
            done.push({ id: row.id, at: now, result })
            after = row.id
            if (done.length >= PAGE || Date.now() - lastFlush >= FLUSH_MS) {
              await flush(done)
              lastFlush = Date.now()
            }
            continue
          }
          await flush(done)
          await fail(hook, row, now, result)
          continue outer
        }
      }
    } catch (error) {
      log.warn('webhook dispatch stopped on an error; retrying soon', {
        webhook: id,
        error: String(error),
      })
    } finally {
      // Sent and answered 2xx but not recorded would be sent again: record them before letting go.
      await flush(done).catch((error) =>
        log.warn('could not record webhook deliveries; they will be sent again', {
          webhook: id,
          error: String(error),
        }),
      )
      await release(id).catch(() => undefined)
    }
  }

  const start = (id: number) => {
    const running = work(id).finally(() => {
      workers.delete(id)
      // Work may have arrived while it was letting go.
      if (!stopped) soon()
    })
    workers.set(id, running)
  }

  let prunedAt = Date.now()

  /** Looks for endpoints with due deliveries that nobody works on, and claims them. */
  const scan = async () => {
    const now = Date.now()
    if (now - prunedAt > PRUNE_MS) {
      prunedAt = now
      await store
        .prune(() => stopped)
        .catch((error) => log.warn('webhook log pruning failed', { error: String(error) }))
    }
    let nextDue = now + POLL_MS
    const hooks = await store.activeHooks()
    for (const hook of hooks) {
      if (stopped) return
      if (workers.has(hook.id)) continue
      if (hook.owner && hook.owner !== owner && (hook.until ?? 0) > now) continue
      const [head] = await pendingAfter(hook.id, 0, 1)
      if (!head) continue
      if (head.next_attempt_at > now) {
        nextDue = Math.min(nextDue, head.next_attempt_at)
        continue
      }
      if (await claim(hook.id, now)) start(hook.id)
    }
    schedule(Math.max(10, nextDue - Date.now()))
  }

  const runScan = () => {
    timer = undefined
    if (stopped) return
    if (scanning) {
      scanAgain = true
      return
    }
    scanning = scan()
      .catch((error) => {
        log.warn('webhook scan failed; retrying', { error: String(error) })
        schedule(POLL_MS)
      })
      .finally(() => {
        scanning = undefined
        if (scanAgain) {
          scanAgain = false
          soon()
        }
      })
  }

  const schedule = (ms: number) => {
    if (stopped) return
    clearTimeout(timer)
    timer = setTimeout(runScan, ms)
    timer.unref?.()
  }

  const soon = () => schedule(0)

  return {
    /** New deliveries for these endpoints were committed here: their workers, or a scan, pick them up. */
    wake(ids: Iterable<number>) {
      let unclaimed = false
      for (const id of ids) {
        if (workers.has(id)) wakers.get(id)?.()
        else unclaimed = true
      }
      if (unclaimed) soon()
    },
    /** An endpoint changed (paused, resumed, deleted, re-pointed): its worker looks again now. */
    changed(id: number) {
      wakers.get(id)?.()
      soon()
    },
    async start() {
      stopped = false
      stopping = new AbortController()
      // One SQLite file is one instance: leases left by a killed process are this instance's now.
      if (db.dialect === 'sqlite') await store.clearLeases()
      soon()
    },
    /** Stops claiming; in-flight sends are cut short (sent again later), successes recorded, leases released. */
    async stop() {
      stopped = true
      stopping.abort()
      clearTimeout(timer)
      for (const waker of [...wakers.values()]) waker()
      await scanning
      await Promise.all(workers.values())
    },
    /** Endpoints this instance is sending to right now. */
    busy: () => workers.size,
  }
}

export type Dispatcher = ReturnType<typeof createDispatcher>
