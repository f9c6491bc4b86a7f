// User use cases: argon2id passwords, at least one admin at all times, and the first admin at start.
import { and, asc, count, eq, ne } from 'drizzle-orm'
import type { Config } from '../../config'
import type { AppContext, Services } from '../../context'
import type { Tx } from '../../db'
import { users } from '../../db/schema'
import { ConflictError, NotFoundError } from '../../lib/errors'
import type { Logger } from '../../lib/logger'
import { iso } from '../../lib/time'
import type { Role } from '../auth/permissions'
import type { User, UserCreate, UserPatch, UserQuery } from './model'

type Row = typeof users.$inferSelect

const toDto = (row: Row): User => ({
  id: row.id,
  username: row.username,
  role: row.role,
  channels: row.channels,
  created_at: iso(row.created_at),
  updated_at: iso(row.updated_at),
})

export const hashPassword = (password: string) =>
  Bun.password.hash(password, { algorithm: 'argon2id' })

/** 24 random characters (18 bytes, base64): the first admin's password and a reset's when none is given. */
export const generatePassword = () => crypto.getRandomValues(new Uint8Array(18)).toBase64()

async function findRow(tx: Tx, id: number): Promise<Row> {
  const [row] = await tx.select().from(users).where(eq(users.id, id)).limit(1)
  if (!row) throw new NotFoundError('User', id)
  return row
}

async function checkUsernameFree(tx: Tx, username: string, exceptId?: number) {
  const [taken] = await tx
    .select({ id: users.id })
    .from(users)
    .where(and(eq(users.username, username), exceptId ? ne(users.id, exceptId) : undefined))
  if (taken)
    throw new ConflictError(`User "${username}" already exists; pick another username.`, {
      field: 'username',
    })
}

/** Refuses a change that would leave nobody able to manage users. */
async function keepAnAdmin(tx: Tx, row: Row, newRole: Role | undefined) {
  if (row.role !== 'admin' || newRole === 'admin') return
  const [{ admins }] = await tx
    .select({ admins: count() })
    .from(users)
    .where(and(eq(users.role, 'admin'), ne(users.id, row.id)))
  if (admins === 0)
    throw new ConflictError(
      `User "${row.username}" is the last admin; make another user admin first.`,
    )
}

export async function listUsers({ db }: Services, q: UserQuery) {
  const where = q.role ? eq(users.role, q.role) : undefined
  const rows = await db.read
    .select()
    .from(users)
    .where(where)
    .orderBy(asc(users.id))
    .limit(q.limit ?? 100)
    .offset(q.offset ?? 0)
  const [{ total }] = await db.read.select({ total: count() }).from(users).where(where)
  return { items: rows.map(toDto), total }
}

export const getUser = async ({ db }: Services, id: number) => toDto(await findRow(db.read, id))

/** The stored user for a login, hash included; undefined when there is no such user. */
export async function findCredentials({ db }: Pick<Services, 'db'>, username: string) {
  const [row] = await db.read.select().from(users).where(eq(users.username, username)).limit(1)
  return row
}

export async function createUser({ db }: Services, input: UserCreate) {
  const passwordHash = await hashPassword(input.password)
  return db.transaction(async (tx) => {
    await checkUsernameFree(tx, input.username)
    const now = Date.now()
    const [row] = await tx
      .insert(users)
      .values({
        username: input.username,
        password_hash: passwordHash,
        role: input.role ?? 'viewer',
        channels: input.channels ?? ['*'],
        created_at: now,
        updated_at: now,
      })
      .returning()
    return toDto(row!)
  })
}

type WithRevocations = Pick<AppContext, 'db' | 'revocations'>

/**
 * A new password or username revokes every token the user holds (effective on every instance within
 * a fraction of a second; their open WebSockets close with 4401).
 */
export async function patchUser(
  { db, revocations }: WithRevocations,
  id: number,
  patch: UserPatch,
) {
  const passwordHash = patch.password === undefined ? undefined : await hashPassword(patch.password)
  const updated = await db.transaction(async (tx) => {
    const row = await findRow(tx, id)
    const renamed = patch.username !== undefined && patch.username !== row.username
    if (passwordHash !== undefined || renamed) await revocations.revokeUser(tx, row.username)
    if (patch.username !== undefined) await checkUsernameFree(tx, patch.username, id)
    // A role left out stays as it is: only a new role can take the last admin's rights away.
    if (patch.role !== undefined) await keepAnAdmin(tx, row, patch.role)
    const [updated] = await tx
      .update(users)
      .set({
        ...(patch.username === undefined ? {} : { username: patch.username }),
        ...(patch.role === undefined ? {} : { role: patch.role }),
        ...(patch.channels === undefined ? {} : { channels: patch.channels }),
        ...(passwordHash === undefined ? {} : { password_hash: passwordHash }),
        updated_at: Date.now(),
      })
      .where(eq(users.id, id))
      .returning()
    return toDto(updated!)
  })
  await revocations.refresh()
  return updated
}

/**
 * A new password for the user of that name (`bun run user:password`), through patchUser: the same
 * hashing, and whatever else a password change does through the API (its tokens are revoked).
 */
export async function setPassword(services: WithRevocations, username: string, password: string) {
  const row = await findCredentials(services, username)
  if (!row) throw new NotFoundError('User', username)
  return patchUser(services, row.id, { password })
}

/** Deleting a user revokes every token of theirs. */
export async function deleteUser({ db, revocations }: WithRevocations, id: number) {
  await db.transaction(async (tx) => {
    const row = await findRow(tx, id)
    await keepAnAdmin(tx, row, undefined)
    await tx.delete(users).where(eq(users.id, id))
    await revocations.revokeUser(tx, row.username)
  })
  await revocations.refresh()
}

/**
 * When no user exists, creates the admin named by ADMIN_USERNAME with ADMIN_PASSWORD, or with a
 * random password that is written to the log this once (it is stored only as a hash).
 */
export async function ensureFirstUser(
  { db }: Pick<Services, 'db'>,
  admin: Readonly<Config['admin']>,
  log: Logger,
) {
  const [existing] = await db.read.select({ id: users.id }).from(users).limit(1)
  if (existing) return
  const password = admin.password ?? generatePassword()
  const passwordHash = await hashPassword(password)
  const created = await db.transaction(async (tx) => {
    const [raced] = await tx.select({ id: users.id }).from(users).limit(1)
    if (raced) return false
    const now = Date.now()
    await tx.insert(users).values({
      username: admin.username,
      password_hash: passwordHash,
      role: 'admin',
      channels: ['*'],
      created_at: now,
      updated_at: now,
    })
    return true
  })
  if (!created) return
  if (admin.password)
    log.info(`Created the first user "${admin.username}" (admin) from ADMIN_PASSWORD`)
  else
    log.warn(
      `Created the first user "${admin.username}" (admin) with the generated password ${password} ; it is shown only this once: log in and change it (PATCH /api/v1/users/:id), or set ADMIN_PASSWORD before the first start.`,
    )
}
