// Device keys: random 256-bit secrets a device sends as its bearer token to store its own sensor's
// readings. Only the key's SHA-256 is stored: a key is random and long, so a fast hash is as safe as a
// slow one (nothing to guess from a dictionary) and a request costs one indexed lookup, not an argon2 run.
import { and, asc, eq, isNull, sql } from 'drizzle-orm'
import type { Database, Tx } from '../../db'
import { isSqlite } from '../../db'
import { prepared } from '../../db/prepared'
import { deviceKeys, sensors } from '../../db/schema'
import { NotFoundError } from '../../lib/errors'
import type { Logger } from '../../lib/logger'
import { iso } from '../../lib/time'
import type { DeviceKey, DeviceKeyCreate, IssuedKey } from './model'

type Row = typeof deviceKeys.$inferSelect

export const KEY_PREFIX = 'vdk_'
/** last_used_at is written at most this often per key (not once per reading). */
const TOUCH_MS = 60_000

export const isDeviceKey = (token: string) => token.startsWith(KEY_PREFIX)
export const hashKey = (key: string) => new Bun.CryptoHasher('sha256').update(key).digest('hex')

const toDto = (row: Row): DeviceKey => ({
  id: row.id,
  sensor_id: row.sensor_id,
  name: row.name,
  prefix: row.prefix,
  created_at: iso(row.created_at),
  last_used_at: row.last_used_at === null ? null : iso(row.last_used_at),
  revoked_at: row.revoked_at === null ? null : iso(row.revoked_at),
})

async function requireSensor(tx: Tx, id: number) {
  const [row] = await tx.select({ id: sensors.id }).from(sensors).where(eq(sensors.id, id)).limit(1)
  if (!row) throw new NotFoundError('Sensor', id)
}

export async function issueKey(
  db: Database,
  sensorId: number,
  input: DeviceKeyCreate,
): Promise<IssuedKey> {
  const key = `${KEY_PREFIX}${crypto.getRandomValues(new Uint8Array(32)).toBase64({ alphabet: 'base64url', omitPadding: true })}`
  const row = await db.transaction(async (tx) => {
    await requireSensor(tx, sensorId)
    const [row] = await tx
      .insert(deviceKeys)
      .values({
        sensor_id: sensorId,
        name: input.name ?? null,
        prefix: key.slice(0, KEY_PREFIX.length + 6),
        hash: hashKey(key),
        created_at: Date.now(),
      })
      .returning()
    return row!
  })
  return { ...toDto(row), key }
}

export async function listKeys(db: Database, sensorId: number): Promise<DeviceKey[]> {
  await requireSensor(db.read, sensorId)
  const rows = await db.read
    .select()
    .from(deviceKeys)
    .where(eq(deviceKeys.sensor_id, sensorId))
    .orderBy(asc(deviceKeys.id))
  return rows.map(toDto)
}

/** Revokes at once (the next request with it is refused); revoking a revoked key changes nothing. */
export async function revokeKey(db: Database, sensorId: number, keyId: number) {
  await db.transaction(async (tx) => {
    const [row] = await tx
      .select({ id: deviceKeys.id, revoked: deviceKeys.revoked_at })
      .from(deviceKeys)
      .where(and(eq(deviceKeys.id, keyId), eq(deviceKeys.sensor_id, sensorId)))
    if (!row) throw new NotFoundError(`Key of sensor ${sensorId}`, keyId)
    if (row.revoked === null)
      await tx.update(deviceKeys).set({ revoked_at: Date.now() }).where(eq(deviceKeys.id, keyId))
  })
}

export interface DeviceIdentity {
  keyId: number
  sensorId: number
}

export type DeviceKeyCheck = (key: string) => Promise<DeviceIdentity | undefined>

/**
 * The sensor a live key belongs to, or undefined for an unknown or revoked key: one lookup by hash.
 * last_used_at is written in the background, at most once a minute per key.
 */
export function deviceKeyCheck(db: Database, log: Logger): DeviceKeyCheck {
  const touched = new Map<number, number>()
  const lookup = (tx: Tx, hash: string) =>
    isSqlite(tx)
      ? prepared(tx, 'device-key', () =>
          tx
            .select({
              id: deviceKeys.id,
              sensorId: deviceKeys.sensor_id,
              lastUsed: deviceKeys.last_used_at,
            })
            .from(deviceKeys)
            .where(and(eq(deviceKeys.hash, sql.placeholder('hash')), isNull(deviceKeys.revoked_at)))
            .prepare(),
        ).all({ hash })
      : tx
          .select({
            id: deviceKeys.id,
            sensorId: deviceKeys.sensor_id,
            lastUsed: deviceKeys.last_used_at,
          })
          .from(deviceKeys)
          .where(and(eq(deviceKeys.hash, hash), isNull(deviceKeys.revoked_at)))
  return async (key) => {
    if (key.length > 200) return undefined
    const [row] = await lookup(db.read, hashKey(key))
    if (!row) return undefined
    const now = Date.now()
    const last = Math.max(row.lastUsed ?? 0, touched.get(row.id) ?? 0)
    if (now - last >= TOUCH_MS) {
      touched.set(row.id, now)
      db.transaction((tx) =>
        tx.update(deviceKeys).set({ last_used_at: now }).where(eq(deviceKeys.id, row.id)),
      ).catch((error) =>
        log.debug('could not record a device key use', { key: row.id, error: String(error) }),
      )
    }
    return { keyId: row.id, sensorId: row.sensorId }
  }
}
