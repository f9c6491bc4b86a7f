// Selects over a set of ids (selectByIds): on PostgreSQL each is built once per key and id count and run
// again with other ids; the rows must be exactly those drizzle's own builder reads, mapped the same way.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { asc, inArray, sql } from 'drizzle-orm'
import type { Database } from '../src/db'
import { selectByIds } from '../src/db/prepared'
import { anomalies, sensors } from '../src/db/schema'
import { openTestStorage } from './helpers'

setDefaultTimeout(30_000)

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`selectByIds on ${dialect}`, () => {
    let db: Database
    let storage: Awaited<ReturnType<typeof openTestStorage>>
    const ids: number[] = []
    beforeAll(async () => {
      storage = await openTestStorage(dialect)
      db = storage.db
      const now = Date.now()
      await db.transaction(async (tx) => {
        for (let i = 0; i < 6; i++) {
          const [sensor] = await tx
            .insert(sensors)
            .values({
              tipo: 'temperatura',
              modelo: `m${i}`,
              thresholds: i % 2 ? { temperatura: { max: 30 + i } } : null,
              created_at: now,
              updated_at: now,
            })
            .returning()
          ids.push(sensor!.id)
          // Values of every kind the table holds: fractions, nulls, text, large ms timestamps.
          await tx.insert(anomalies).values({
            sensor_id: sensor!.id,
            variable: i % 2 ? 'temperatura' : 'co2',
            value: 21.5 + i / 3,
            severity: 'warning',
            status: i === 3 ? 'resolved' : 'open',
            rule: 'threshold',
            kind: i % 2 ? 'above_max' : null,
            expected_min: i % 3 ? null : -0.125,
            expected_max: 30 + i,
            message: `anomaly ${i}`,
            first_seen: now - i * 86_400_000,
            last_seen: now,
            resolved_at: i === 3 ? now : null,
            created_at: now,
            updated_at: now,
          })
        }
      })
    })
    afterAll(() => storage.close())

    const open = (of: number[]) =>
      selectByIds(db.read, 'test-open-anomalies', of, (match) =>
        db.read
          .select()
          .from(anomalies)
          .where(sql`${match(anomalies.sensor_id)} and ${anomalies.status} = 'open'`),
      )
    const direct = (of: number[]) =>
      db.read
        .select()
        .from(anomalies)
        .where(sql`${inArray(anomalies.sensor_id, of)} and ${anomalies.status} = 'open'`)
        .orderBy(asc(anomalies.id))
    const byId = <T extends { id: number }>(rows: T[]) => [...rows].sort((a, b) => a.id - b.id)

    test('reads the rows drizzle reads, mapped alike, again with other ids of the same count', async () => {
      for (const of of [[ids[0]!], [ids[1]!], ids.slice(0, 3), ids.slice(3, 6), ids]) {
        const rows = byId(await open(of))
        expect(rows).toEqual(await direct(of))
        expect(rows.length).toBeGreaterThan(0)
      }
    })

    test('maps selected fields and JSON columns as drizzle does', async () => {
      const read = (of: number[]) =>
        selectByIds(db.read, 'test-sensor-rules', of, (match) =>
          db.read
            .select({ id: sensors.id, own: sensors.thresholds, modelo: sensors.modelo })
            .from(sensors)
            .where(match(sensors.id)),
        )
      for (const of of [ids.slice(0, 2), ids.slice(2, 4)]) {
        const rows = byId(await read(of))
        expect(rows).toEqual(
          await db.read
            .select({ id: sensors.id, own: sensors.thresholds, modelo: sensors.modelo })
            .from(sensors)
            .where(inArray(sensors.id, of))
            .orderBy(asc(sensors.id)),
        )
        expect(rows.map((r) => r.id)).toEqual(of)
      }
    })
  })
}
