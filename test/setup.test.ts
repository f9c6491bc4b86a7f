// The README's test command is what CI runs, and what it needs is set up by `bun test` itself
// (test/preload.ts): quickly, and doing nothing when everything is there.
import { describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const ROOT = join(import.meta.dir, '..')
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')

describe('the test command', () => {
  test('.ci/run runs exactly the README test command (its second command line) and nothing else before it', () => {
    const readme = read('README.md')
    const block = /```bash\n([\s\S]*?)```/.exec(readme)![1]!
    const lines = block.split('\n').filter((line) => line.trim())
    const command = lines[1]!.replace(/\s+#.*$/, '').trim()
    expect(command).toEndWith('bun test')
    const ci = read('.ci/run')
    expect(/^TEST_COMMAND='([^']+)'$/m.exec(ci)?.[1]).toBe(command)
    expect(ci).toContain('bash -c "$TEST_COMMAND" 2>&1 | tee .tmp/test.log')
    const code = ci
      .split('\n')
      .filter((line) => !line.startsWith('#') && !line.startsWith('TEST_COMMAND='))
      .join('\n')
    expect(code).not.toMatch(/\b(bun|npm|apt-get|pg_ctlcluster|redis-server|mosquitto)\b/)
    expect(ci).toContain('echo "${passed:-0} passed, ${failed:-0} failed"')
  })

  test('bunfig.toml preloads test/preload.ts for every bun test run', () => {
    expect(read('bunfig.toml')).toMatch(/^\[test\][\s\S]*^preload = \["\.\/test\/preload\.ts"\]$/m)
  })

  test('the preload, with the services up and the packages installed, does nothing', async () => {
    const child = Bun.spawn(['bun', 'test/preload.ts'], {
      cwd: ROOT,
      stdout: 'pipe',
      stderr: 'pipe',
    })
    const [out, err, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ])
    // It logs every start and install it does: silence means three port probes and two file checks.
    expect({ code, out, err }).toEqual({ code: 0, out: '', err: '' })
  })
})
