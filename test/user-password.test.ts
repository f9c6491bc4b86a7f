// `bun run user:password` as a process against the database of a running server: the new password logs in
// at once, the old one no longer does; bad usage, a short password and an unknown user change nothing.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { join } from 'node:path'
import { ADMIN, startAuthServer } from './auth-kit'
import type { TestServer } from './helpers'

setDefaultTimeout(30_000)

let server: TestServer

beforeAll(async () => {
  server = await startAuthServer()
})
afterAll(() => server.stop())

/** Runs `bun run user:password …` in the repository with the server's DATABASE_URL. */
async function run(args: string[], stdin?: string) {
  const { database } = server.config
  const child = Bun.spawn(['bun', 'run', 'user:password', ...args], {
    cwd: join(import.meta.dir, '..'),
    env: {
      ...process.env,
      DATABASE_URL: database.kind === 'sqlite' ? `sqlite:${database.path}` : database.url,
      LOG_LEVEL: 'silent',
    },
    stdin: stdin === undefined ? 'ignore' : new Blob([stdin]),
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ])
  return { code, stdout, stderr }
}

const loginStatus = async (username: string, password: string) =>
  (await server.api('POST', '/auth/login', { username, password })).status

describe('bun run user:password', () => {
  test('sets the password read from stdin; the running server takes the new one and refuses the old', async () => {
    await server.api(
      'POST',
      '/api/v1/users',
      { username: 'ana', password: 'old-password-1' },
      {
        authorization: `Bearer ${(await server.api('POST', '/auth/login', ADMIN)).body.access_token}`,
      },
    )
    expect(await loginStatus('ana', 'old-password-1')).toBe(200)
    const result = await run(['ana'], 'a brand new passphrase\n')
    expect(result).toMatchObject({ code: 0, stdout: '' })
    expect(result.stderr).toContain('"ana"')
    expect(await loginStatus('ana', 'a brand new passphrase')).toBe(200)
    expect(await loginStatus('ana', 'old-password-1')).toBe(401)
  })

  test('--generate prints a new random password, which logs in', async () => {
    const result = await run(['admin', '--generate'])
    expect(result.code).toBe(0)
    const password = result.stdout.trim()
    expect(password).toMatch(/^\S{24}$/)
    expect(await loginStatus('admin', password)).toBe(200)
    expect(await loginStatus('admin', ADMIN.password)).toBe(401)
    // Put the known password back for the other tests.
    expect((await run(['admin'], ADMIN.password)).code).toBe(0)
    expect(await loginStatus('admin', ADMIN.password)).toBe(200)
  })

  test('an unknown user, a short password or a missing name exits non-zero with a sentence and changes nothing', async () => {
    const unknown = await run(['nobody'], 'long enough password')
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('There is no user named "nobody"')
    const short = await run(['admin'], 'short')
    expect(short.code).toBe(2)
    expect(short.stderr).toContain('8 to 256 characters')
    const usage = await run([], 'long enough password')
    expect(usage.code).toBe(2)
    expect(usage.stderr).toContain('Usage: bun run user:password')
    expect(await loginStatus('admin', ADMIN.password)).toBe(200)
  })

  test('a database that is not there is named, and not created', async () => {
    const child = Bun.spawn(['bun', 'run', 'user:password', 'admin', '--generate'], {
      cwd: join(import.meta.dir, '..'),
      env: { ...process.env, DATABASE_URL: `sqlite:${server.dir}/missing/none.db` },
      stdout: 'pipe',
      stderr: 'pipe',
    })
    expect(await child.exited).toBe(1)
    expect(await new Response(child.stderr).text()).toContain('No database at')
    expect(await Bun.file(`${server.dir}/missing/none.db`).exists()).toBe(false)
  })
})
