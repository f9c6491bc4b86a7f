// Webhook use cases: endpoints and their filters, secrets (shown once, rotated with an overlap), the
// delivery log and the test send. Every change to an endpoint bumps event_meta.webhook_rev in its own
// transaction, so each instance's cached filters are refreshed by the next write that reads it.
import { and, count, desc, eq, inArray, sql } from 'drizzle-orm'
import type { Database, Tx } from '../../db'
import { eventMeta, webhookDeliveries, webhooks } from '../../db/schema'
import { InvalidFieldError, NotFoundError } from '../../lib/errors'
import { iso } from '../../lib/time'
import { CHANNEL_HELP, isChannel } from '../../realtime/channels'
import { BlockedAddressError, type AddressPolicy } from './address'
import type {
  Delivery,
  DeliveryQuery,
  RotateBody,
  Webhook,
  WebhookCreate,
  WebhookPatch,
  WebhookWithSecret,
} from './model'
import type { Sender } from './sender'

type Row = typeof webhooks.$inferSelect
type DeliveryRow = typeof webhookDeliveries.$inferSelect

export interface WebhookDeps {
  db: Database
  policy: AddressPolicy
  sender: Sender
  /** Tells the dispatcher an endpoint changed (paused, resumed, deleted). */
  changed(id: number): void
}

const DEFAULT_OVERLAP_S = 86_400

export const newSecret = () => `whsec_${crypto.getRandomValues(new Uint8Array(32)).toBase64()}`

/** The secrets that sign a delivery now: the current one, and the previous one during its overlap. */
export function signingSecrets(
  row: Pick<Row, 'secret' | 'previous_secret' | 'previous_secret_until'>,
  now = Date.now(),
) {
  return row.previous_secret && (row.previous_secret_until ?? 0) > now
    ? [row.secret, row.previous_secret]
    : [row.secret]
}

const toDto = (row: Row, pending = 0): Webhook => ({
  id: row.id,
  url: row.url,
  description: row.description,
  channels: row.channels,
  event_types: row.event_types,
  status: row.status,
  disabled_reason: row.disabled_reason,
  previous_secret_expires_at:
    row.previous_secret && row.previous_secret_until && row.previous_secret_until > Date.now()
      ? iso(row.previous_secret_until)
      : null,
  pending,
  created_at: iso(row.created_at),
  updated_at: iso(row.updated_at),
})

const when = (ms: number | null) => (ms === null ? null : iso(ms))

export const deliveryDto = (row: DeliveryRow): Delivery => ({
  id: row.id,
  webhook_id: row.webhook_id,
  seq: row.seq,
  msg_id: row.msg_id,
  status: row.status,
  attempts: row.attempts,
  next_attempt_at: row.status === 'pending' ? iso(row.next_attempt_at) : null,
  last_attempt_at: when(row.last_attempt_at),
  response_status: row.response_status,
  response_ms: row.response_ms,
  last_error: row.last_error,
  delivered_at: when(row.delivered_at),
  created_at: iso(row.created_at),
})

/** Makes every instance reload its webhook filters on its next write. */
export const bumpRevision = (tx: Tx) =>
  tx
    .update(eventMeta)
    .set({ webhook_rev: sql`${eventMeta.webhook_rev} + 1` })
    .where(eq(eventMeta.id, 1))

async function findRow(tx: Tx, id: number): Promise<Row> {
  const [row] = await tx.select().from(webhooks).where(eq(webhooks.id, id)).limit(1)
  if (!row) throw new NotFoundError('Webhook', id)
  return row
}

async function pendingCounts(db: Tx, ids: number[]): Promise<Map<number, number>> {
  if (ids.length === 0) return new Map()
  const rows = await db
    .select({ id: webhookDeliveries.webhook_id, pending: count() })
    .from(webhookDeliveries)
    .where(and(inArray(webhookDeliveries.webhook_id, ids), eq(webhookDeliveries.status, 'pending')))
    .groupBy(webhookDeliveries.webhook_id)
  return new Map(rows.map((r) => [r.id, r.pending]))
}

/**
 * An http(s) URL without credentials whose host, if it is an address or resolves now, is one
 * WEBHOOK_ALLOW permits. (Every delivery checks the resolved addresses again: DNS may change.)
 */
async function checkUrl(policy: AddressPolicy, text: string): Promise<string> {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new InvalidFieldError(
      'url',
      `"${text.slice(0, 100)}" is not a URL; give an http:// or https:// URL.`,
    )
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidFieldError(
      'url',
      `Webhook URLs must be http:// or https://, not ${url.protocol}`,
    )
  if (url.username || url.password)
    throw new InvalidFieldError(
      'url',
      'Webhook URLs cannot carry a user name or password; put a token in the path or query instead.',
    )
  try {
    await policy.resolve(url)
  } catch (error) {
    if (error instanceof BlockedAddressError)
      throw new InvalidFieldError('url', `${error.message}.`)
    // Not resolvable now: it may be later, and every delivery checks again.
  }
  return url.toString()
}

function checkChannels(channels: string[]) {
  channels.forEach((channel, i) => {
    if (!isChannel(channel))
      throw new InvalidFieldError(
        `channels[${i}]`,
        `Unknown channel "${channel.slice(0, 60)}". ${CHANNEL_HELP}`,
      )
  })
  return [...new Set(channels)]
}

export async function listWebhooks({ db }: WebhookDeps): Promise<Webhook[]> {
  const rows = await db.read.select().from(webhooks).orderBy(webhooks.id)
  const pending = await pendingCounts(
    db.read,
    rows.map((r) => r.id),
  )
  return rows.map((row) => toDto(row, pending.get(row.id)))
}

export async function getWebhook({ db }: WebhookDeps, id: number): Promise<Webhook> {
  const row = await findRow(db.read, id)
  return toDto(row, (await pendingCounts(db.read, [id])).get(id))
}

export async function createWebhook(
  deps: WebhookDeps,
  input: WebhookCreate,
): Promise<WebhookWithSecret> {
  const url = await checkUrl(deps.policy, input.url)
  const channels = checkChannels(input.channels ?? ['general'])
  const now = Date.now()
  const row = await deps.db.transaction(async (tx) => {
    const [row] = await tx
      .insert(webhooks)
      .values({
        url,
        description: input.description ?? null,
        channels,
        event_types: [...new Set(input.event_types ?? [])],
        status: input.status ?? 'active',
        secret: newSecret(),
        created_at: now,
        updated_at: now,
      })
      .returning()
    await bumpRevision(tx)
    return row!
  })
  return { ...toDto(row), secret: row.secret }
}

export async function patchWebhook(
  deps: WebhookDeps,
  id: number,
  patch: WebhookPatch,
): Promise<Webhook> {
  const url = patch.url === undefined ? undefined : await checkUrl(deps.policy, patch.url)
  const channels = patch.channels === undefined ? undefined : checkChannels(patch.channels)
  const row = await deps.db.transaction(async (tx) => {
    const current = await findRow(tx, id)
    const resuming = patch.status === 'active' && current.status !== 'active'
    const now = Date.now()
    const [row] = await tx
      .update(webhooks)
      .set({
        ...(url === undefined ? {} : { url }),
        ...(channels === undefined ? {} : { channels }),
        ...(patch.event_types === undefined
          ? {}
          : { event_types: [...new Set(patch.event_types)] }),
        ...(patch.description === undefined ? {} : { description: patch.description }),
        ...(patch.status === undefined ? {} : { status: patch.status }),
        ...(resuming ? { disabled_reason: null } : {}),
        updated_at: now,
      })
      .where(eq(webhooks.id, id))
      .returning()
    // What waited while it was paused gets a fresh retry window, sent at once.
    if (resuming)
      await tx
        .update(webhookDeliveries)
        .set({ next_attempt_at: now, first_attempt_at: null })
        .where(and(eq(webhookDeliveries.webhook_id, id), eq(webhookDeliveries.status, 'pending')))
    await bumpRevision(tx)
    return row!
  })
  deps.changed(id)
  return toDto(row, (await pendingCounts(deps.db.read, [id])).get(id))
}

export async function deleteWebhook(deps: WebhookDeps, id: number) {
  await deps.db.transaction(async (tx) => {
    await findRow(tx, id)
    await tx.delete(webhooks).where(eq(webhooks.id, id))
    await bumpRevision(tx)
  })
  deps.changed(id)
}

/** A new secret, shown once; the old one keeps signing (beside it) for `overlap_seconds`. */
export async function rotateSecret(
  deps: WebhookDeps,
  id: number,
  input: RotateBody,
): Promise<WebhookWithSecret> {
  const overlap = (input.overlap_seconds ?? DEFAULT_OVERLAP_S) * 1000
  const row = await deps.db.transaction(async (tx) => {
    const current = await findRow(tx, id)
    const now = Date.now()
    const [row] = await tx
      .update(webhooks)
      .set({
        secret: newSecret(),
        previous_secret: overlap > 0 ? current.secret : null,
        previous_secret_until: overlap > 0 ? now + overlap : null,
        updated_at: now,
      })
      .where(eq(webhooks.id, id))
      .returning()
    return row!
  })
  return { ...toDto(row, (await pendingCounts(deps.db.read, [id])).get(id)), secret: row.secret }
}

export async function listDeliveries({ db }: WebhookDeps, id: number, q: DeliveryQuery) {
  await findRow(db.read, id)
  const where = and(
    eq(webhookDeliveries.webhook_id, id),
    q.status ? eq(webhookDeliveries.status, q.status) : undefined,
  )
  const rows = await db.read
    .select()
    .from(webhookDeliveries)
    .where(where)
    .orderBy(desc(webhookDeliveries.id))
    .limit(q.limit ?? 100)
    .offset(q.offset ?? 0)
  const [{ total }] = await db.read.select({ total: count() }).from(webhookDeliveries).where(where)
  return { items: rows.map(deliveryDto), total }
}

/**
 * Sends one signed test frame now (a system_event with seq 0 and data.test true), whatever the
 * endpoint's status, and logs it as a delivery; not retried.
 */
export async function sendTest(deps: WebhookDeps, id: number) {
  const hook = await findRow(deps.db.read, id)
  const now = Date.now()
  const payload = JSON.stringify({
    type: 'system_event',
    level: 'info',
    message: 'Prueba de webhook',
    data: { test: true, webhook_id: id, module: 'webhooks' },
    timestamp: iso(now),
    seq: 0,
  })
  const msgId = `msg_test_${crypto.randomUUID().replaceAll('-', '')}`
  const result = await deps.sender.send(hook.url, signingSecrets(hook), msgId, payload)
  const done = Date.now()
  const [row] = await deps.db.transaction((tx) =>
    tx
      .insert(webhookDeliveries)
      .values({
        webhook_id: id,
        seq: 0,
        msg_id: msgId,
        payload,
        status: result.ok ? 'delivered' : 'failed',
        attempts: 1,
        next_attempt_at: now,
        first_attempt_at: now,
        last_attempt_at: now,
        response_status: result.status ?? null,
        response_ms: result.ms,
        last_error: result.error ?? null,
        delivered_at: result.ok ? done : null,
        created_at: now,
      })
      .returning(),
  )
  return { delivered: result.ok, delivery: deliveryDto(row!) }
}
