// `bun run chaos`: the long chaos run behind docs/reliability.md. Two instances on a private PostgreSQL
// and a private Redis, writers and reconnecting subscribers on both, each service stopped and started
// at random moments; prints what was acknowledged, refused, stored and delivered. Exit 1 on any breach.
//   bun run chaos [--outages 10] [--down 1000-5000] [--up 2000-8000] [--writers 3] [--subscribers 3]
import { parseArgs } from 'node:util'
import { describeChaos, runChaos } from '../test/chaos-kit'

const { values } = parseArgs({
  options: {
    outages: { type: 'string', default: '10' },
    down: { type: 'string', default: '1000-5000' },
    up: { type: 'string', default: '2000-8000' },
    writers: { type: 'string', default: '3' },
    subscribers: { type: 'string', default: '3' },
  },
})
const range = (text: string): [number, number] => {
  const [min, max] = text.split('-').map(Number)
  if (!Number.isFinite(min) || !Number.isFinite(max))
    throw new Error(`bad range ${text}: use 1000-5000`)
  return [min!, max!]
}

const outages = Number(values.outages)
const result = await runChaos({
  pgOutages: outages,
  redisOutages: outages,
  downMs: range(values.down!),
  upMs: range(values.up!),
  writersPerInstance: Number(values.writers),
  subscribersPerInstance: Number(values.subscribers),
  promptMs: 1000,
  acknowledgedMs: 5000,
  log: (line) => console.log(`${new Date().toISOString().slice(11, 19)} ${line}`),
})
console.log(describeChaos(result))
const breaches = [
  ...result.instances.flatMap((i, n) =>
    i.exitCode !== undefined || i.restarted ? [`instance ${n} exited or restarted`] : [],
  ),
  ...result.writes.other.map((w) => `write answered ${w}`),
  ...result.writes.slow.map((w) => `write answered ${w}`),
  ...result.acknowledgedMissing.map((id) => `acknowledged reading ${id} not stored`),
  ...result.health.other.map((h) => `health answered ${h}`),
  ...result.health.slow.map((h) => `health answered ${h}`),
  ...result.subscribers.problems,
  ...(result.subscribers.undelivered > 0
    ? [`${result.subscribers.undelivered} readings undelivered`]
    : []),
]
for (const breach of breaches.slice(0, 50)) console.log(`BREACH ${breach}`)
process.exit(breaches.length === 0 ? 0 : 1)
