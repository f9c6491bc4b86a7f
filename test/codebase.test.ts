// The repository's own rules: one formatter, strict types, committed migrations that match the schema.
import { describe, expect, setDefaultTimeout, test } from 'bun:test'

setDefaultTimeout(30_000)

const run = (cmd: string[]) => {
  const proc = Bun.spawnSync(cmd, { cwd: `${import.meta.dir}/..`, stdout: 'pipe', stderr: 'pipe' })
  return { code: proc.exitCode, out: `${proc.stdout.toString()}${proc.stderr.toString()}` }
}

describe('the codebase', () => {
  test('is formatted with prettier', () => {
    const { code, out } = run(['bun', 'x', 'prettier', '--check', '.'])
    expect(out).not.toContain('[warn]')
    expect(code).toBe(0)
  }, 60_000)

  test('type-checks under strict with tsc --noEmit', () => {
    const { code, out } = run(['bun', 'x', 'tsc', '--noEmit', '-p', '.'])
    expect(out).toBe('')
    expect(code).toBe(0)
  }, 120_000)

  test('has committed migrations that match the drizzle schema', () => {
    const { code, out } = run(['bun', 'x', 'drizzle-kit', 'check'])
    expect(code).toBe(0)
    const generate = run(['bun', 'x', 'drizzle-kit', 'generate', '--name', 'ci_probe'])
    expect(generate.out).toContain('No schema changes')
    expect(out.length).toBeGreaterThan(0)
  }, 60_000)
})
