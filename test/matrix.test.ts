// Runs the suite a second time on the other database, so `bun test` covers SQLite and PostgreSQL:
// every test file that starts a test server (itself or through a test kit) runs again in a child
// `bun test` with TEST_DATABASE switched.
import { expect, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { TEST_DATABASE } from './helpers'

const other = TEST_DATABASE === 'postgres' ? 'sqlite' : 'postgres'
/** Files that choose their databases themselves: running them again would repeat the same tests. */
const PINNED = [
  basename(import.meta.path),
  'scale.test.ts',
  'fleet-scale.test.ts',
  'integrations-cluster.test.ts',
  'outage.test.ts',
  'chaos.test.ts',
  'pg-concurrency.test.ts',
]
const read = (name: string) => readFileSync(join(import.meta.dir, name), 'utf8')
const startsServer = (text: string) => text.includes('startTestServer(')
/** Test kits (modules that are not test files) that start servers for the files importing them. */
const kits = readdirSync(import.meta.dir)
  .filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts') && name !== 'helpers.ts')
  .filter((name) => startsServer(read(name)))
  .map((name) => `'./${name.replace(/\.ts$/, '')}'`)
const files = readdirSync(import.meta.dir)
  .filter((name) => name.endsWith('.test.ts') && !PINNED.includes(name))
  .filter(
    (name) => startsServer(read(name)) || kits.some((kit) => read(name).includes(`from ${kit}`)),
  )
  .map((name) => `./test/${name}`)

test(
  `every test file that starts a server also passes on ${other}`,
  async () => {
    expect(files.length).toBeGreaterThan(0)
    const child = Bun.spawn(['bun', 'test', ...files], {
      cwd: join(import.meta.dir, '..'),
      env: { ...process.env, TEST_DATABASE: other },
      stdout: 'inherit',
      stderr: 'inherit',
    })
    expect(await child.exited).toBe(0)
  },
  30 * 60_000,
)
