// The chaos run in the suite: PostgreSQL and Redis each stopped and started 10 times at random moments
// under two instances with writers and reconnecting subscribers; nothing crashes, hangs, is lost or
// arrives twice. `bun run chaos` runs it longer and prints the figures of docs/reliability.md.
import { expect, setDefaultTimeout, test } from 'bun:test'
import { describeChaos, runChaos } from './chaos-kit'

setDefaultTimeout(30_000)

test('two instances survive 10 PostgreSQL and 10 Redis outages: every write acknowledged and stored, or refused within 1 s; health within 1 s; every stream exactly once and in order', async () => {
  const result = await runChaos({
    pgOutages: 10,
    redisOutages: 10,
    downMs: [300, 2000],
    upMs: [500, 2500],
    writersPerInstance: 2,
    subscribersPerInstance: 2,
    promptMs: 1000,
    acknowledgedMs: 5000,
  })
  console.log(describeChaos(result))
  expect(result.pgOutages).toBe(10)
  expect(result.redisOutages).toBe(10)
  expect(result.instances).toEqual([
    { exitCode: undefined, restarted: false },
    { exitCode: undefined, restarted: false },
  ])
  expect(result.writes.acknowledged).toBeGreaterThan(0)
  expect(result.writes.refused).toBeGreaterThan(0)
  expect(result.writes.other).toEqual([])
  expect(result.writes.slow).toEqual([])
  expect(result.acknowledgedMissing).toEqual([])
  expect(result.health.unavailable).toBeGreaterThan(0)
  expect(result.health.other).toEqual([])
  expect(result.health.slow).toEqual([])
  expect(result.subscribers.resumes).toBeGreaterThan(0)
  expect(result.subscribers.notRecovered).toBe(0)
  expect(result.subscribers.problems).toEqual([])
  expect(result.subscribers.undelivered).toBe(0)
}, 240_000)
