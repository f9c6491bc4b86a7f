// The PostgreSQL circuit breaker on its own: it opens only when a probe confirms the database is
// unreachable, refuses at once while open, and closes as soon as a probe answers.
import { expect, test } from 'bun:test'
import { Availability } from '../src/db/availability'
import { DatabaseUnavailableError } from '../src/db/errors'

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
