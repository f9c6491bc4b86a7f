// Writes a transaction sends without waiting for them (later()): on both databases they are committed
// with the transaction, and a failing one fails it with its own error, leaving nothing behind.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { eq } from 'drizzle-orm'
import { later, type Database } from '../src/db'
import { dbErrorCode } from '../src/db/errors'
import { sensors } from '../src/db/schema'
import { openTestStorage } from './helpers'

setDefaultTimeout(30_000)

const sensor = (modelo: string) => ({
  tipo: 'temperatura',
  modelo,
  created_at: Date.now(),
  updated_at: Date.now(),
})

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`later() writes on ${dialect}`, () => {
    let db: Database
    let storage: Awaited<ReturnType<typeof openTestStorage>>
    beforeAll(async () => {
      storage = await openTestStorage(dialect)
      db = storage.db
    })
    afterAll(() => storage.close())

    test('are committed with the transaction that sent them, before its result is handed back', async () => {
      const id = await db.transaction(async (tx) => {
        const [row] = await tx.insert(sensors).values(sensor('first')).returning()
        later(tx, tx.update(sensors).set({ modelo: 'sent later' }).where(eq(sensors.id, row!.id)))
        return row!.id
      })
      const [row] = await db.read.select().from(sensors).where(eq(sensors.id, id))
      expect(row!.modelo).toBe('sent later')
    })

    test('fail the transaction with their own error when they fail, and nothing of it is kept', async () => {
      const before = await db.read.select().from(sensors)
      let failure: unknown
      try {
        await db.transaction(async (tx) => {
          await tx.insert(sensors).values(sensor('rolled back'))
          // A foreign key to a location that does not exist.
          later(tx, tx.update(sensors).set({ location_id: 999_999 }))
          // What follows it in the same transaction: refused on PostgreSQL once the write above failed.
          await tx.select().from(sensors)
          return 1
        })
      } catch (error) {
        failure = error
      }
      expect(failure).toBeDefined()
      expect(dbErrorCode(failure)).toBe(
        dialect === 'postgres' ? '23503' : 'SQLITE_CONSTRAINT_FOREIGNKEY',
      )
      expect(await db.read.select().from(sensors)).toEqual(before)
    })
  })
}
