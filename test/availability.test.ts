// The PostgreSQL circuit breaker: it opens only when a probe confirms the database is unreachable,
// refuses at once while open (a write still waiting for its connection too), and closes as soon as a
// probe answers.
import { expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { Availability } from '../src/db/availability'
import { DatabaseUnavailableError } from '../src/db/errors'
import { openPostgres, pgExecute } from '../src/db/postgres'
import { createTestDatabase } from './helpers'
import { startTcpRelay, until } from './infra'

const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })

async function eventually(check: () => boolean, what: string) {
  const deadline = Date.now() + 5000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(10)
  }
}

test('one failed connection while the database answers is not an outage', async () => {
  let probes = 0
  const breaker = new Availability(async () => {
    probes += 1
  })
  breaker.report(refused)
  await eventually(() => probes === 1, 'the confirming probe')
  await Bun.sleep(20)
  expect(breaker.up).toBe(true)
  expect(() => breaker.check()).not.toThrow()
  breaker.stop()
})

test('a confirmed outage refuses at once until a probe answers, and says when it went and came back', async () => {
  let reachable = false
  const heard: string[] = []
  const breaker = new Availability(
    async () => {
      if (!reachable) throw refused
    },
    { down: () => heard.push('down'), up: () => heard.push('up') },
  )
  breaker.report(new Error('a constraint violation is no outage'))
  breaker.report(refused)
  await eventually(() => !breaker.up, 'the breaker to open')
  expect(() => breaker.check()).toThrow(DatabaseUnavailableError)
  reachable = true
  await eventually(() => breaker.up, 'the breaker to close')
  expect(() => breaker.check()).not.toThrow()
  expect(heard).toEqual(['down', 'up'])
  breaker.stop()
})

test('a write still waiting for its connection when the breaker opens is refused then, and stores nothing when the connection comes later', async () => {
  const database = await createTestDatabase()
  const relay = await startTcpRelay(Number(new URL(database.url).port || 5432))
  const url = new URL(database.url)
  url.port = String(relay.port)
  const db = await openPostgres(url.toString())
  try {
    await pgExecute(db.read, sql`create table abandoned_probe (x int)`)
    // The pool's connections go quietly (none is in use, so nothing fails), and new ones hang, as a
    // connect to a PostgreSQL shutting down can: the write waits for its connection.
    relay.hold()
    relay.cut()
    await Bun.sleep(100)
    const write = db
      .transaction(async (tx) => {
        await pgExecute(tx, sql`insert into abandoned_probe values (1)`)
      })
      .then(
        () => 'stored',
        (error: unknown) => error,
      )
    await Bun.sleep(100)
    // Then connections are refused: a read fails, the probe confirms, the breaker opens, and the write
    // is refused at that moment, not when its connect times out (connect_timeout, 2 s).
    relay.refuse()
    const opened = Date.now()
    await pgExecute(db.read, sql`select 1`).catch(() => undefined)
    const outcome = await write
    expect(outcome).toBeInstanceOf(DatabaseUnavailableError)
    expect(Date.now() - opened).toBeLessThan(1000)
    // Its connection goes through now: the transaction must find itself abandoned and roll back.
    relay.release()
    await until('the breaker to close', async () => {
      await db.ping()
      return true
    })
    await Bun.sleep(200)
    const [row] = await pgExecute(db.read, sql`select count(*)::int as n from abandoned_probe`)
    expect(row!.n).toBe(0)
  } finally {
    await db.close()
    relay.stop()
    await database.drop()
  }
}, 30_000)
