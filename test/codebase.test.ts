// The repository's own rules: one formatter, strict types, committed migrations that match the schema,
// and a README that documents every setting.
import { describe, expect, setDefaultTimeout, test } from 'bun:test'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import GithubSlugger from 'github-slugger'
import { loadConfig } from '../src/config'

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

  test('has one Configuration table in the README with exactly the variables src/config.ts reads', () => {
    const read = new Set<string>()
    loadConfig(
      new Proxy({} as Record<string, string | undefined>, {
        get: (_, name) => {
          if (typeof name === 'string') read.add(name)
          return undefined
        },
      }),
    )
    const readme = readFileSync(`${import.meta.dir}/../README.md`, 'utf8')
    expect(readme.match(/^## Configuration$/gm)).toHaveLength(1)
    const section = readme.split(/^## Configuration$/m)[1]!.split(/^## /m)[0]!
    const documented = section
      .split('\n')
      .filter((line) => line.startsWith('| `'))
      .flatMap((line) => line.split('|')[1]!.split('/'))
      .map((cell) => cell.trim().replace(/`/g, ''))
    expect(documented.sort()).toEqual([...read].sort())
    // No other table has a row per variable (the AUTH_MODE table's header names one): sections link here.
    const rows = readme
      .replace(section, '')
      .split('\n')
      .filter((line, i, lines) => /^\| `[A-Z_]+`/.test(line) && !lines[i + 1]?.startsWith('| ---'))
    expect(rows).toEqual([])
  })
})

describe('the documentation', () => {
  const root = `${import.meta.dir}/..`
  const pages = [
    'README.md',
    'BENCHMARKS.md',
    ...readdirSync(`${root}/docs`).map((f) => `docs/${f}`),
  ]
  const anchors = (page: string) => {
    const slugger = new GithubSlugger()
    return readFileSync(`${root}/${page}`, 'utf8')
      .split('\n')
      .filter((line) => /^#{1,6} /.test(line))
      .map((line) => slugger.slug(line.replace(/^#+ /, '')))
  }

  test('every relative link names a file that exists, and an anchor that is one of its headings', () => {
    const broken: string[] = []
    for (const page of pages.filter((p) => p.endsWith('.md'))) {
      const text = readFileSync(`${root}/${page}`, 'utf8')
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!) || target!.startsWith('/')) continue
        const [file, anchor] = target!.split('#')
        const path = file ? normalize(join(dirname(page), file)) : page
        if (!existsSync(`${root}/${path}`)) broken.push(`${page}: ${target} (no file)`)
        else if (anchor && path.endsWith('.md') && !anchors(path).includes(anchor))
          broken.push(`${page}: ${target} (no heading)`)
      }
    }
    expect(broken).toEqual([])
  })
})
