// Test kit: the third-party checkers the documents must satisfy (redocly, spectral, swagger-parser, ajv,
// promtool), run on what a real server serves, and a sampler that builds a request body from a schema.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import SwaggerParser from '@apidevtools/swagger-parser'
import Ajv2020 from 'ajv/dist/2020'
import addFormats from 'ajv-formats'
import { tempDir } from './helpers'

type Json = Record<string, any>

const ROOT = join(import.meta.dir, '..')
const bin = (name: string) => join(ROOT, 'node_modules/.bin', name)

async function run(cmd: string[], stdin?: string) {
  const child = Bun.spawn(cmd, {
    cwd: ROOT,
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

function writeTemp(name: string, doc: unknown) {
  const file = join(tempDir('vigia-lint-'), name)
  writeFileSync(file, JSON.stringify(doc))
  return file
}

export interface Problem {
  rule: string
  severity: string
  where: string
  message: string
}

/** `redocly lint` with its recommended rules (redocly.yaml); every problem it reports. */
export async function redoclyLint(doc: unknown): Promise<Problem[]> {
  const file = writeTemp('openapi.json', doc)
  const { stdout, stderr } = await run([
    bin('redocly'),
    'lint',
    file,
    '--config',
    join(ROOT, 'redocly.yaml'),
    '--format=json',
    '--max-problems=10000',
  ])
  let report: { problems: Json[] }
  try {
    report = JSON.parse(stdout)
  } catch {
    throw new Error(`redocly gave no report: ${stderr.slice(-2000)}`)
  }
  return report.problems.map((p) => ({
    rule: p.ruleId,
    severity: p.severity,
    where: p.location?.[0]?.pointer ?? '',
    message: p.message,
  }))
}

const SPECTRAL_SEVERITY = ['error', 'warn', 'info', 'hint']

/** `spectral lint` with the spectral:oas ruleset (.spectral.yaml); every problem it reports. */
export async function spectralLint(doc: unknown, ruleset = '.spectral.yaml'): Promise<Problem[]> {
  const file = writeTemp('openapi.json', doc)
  const { stdout, stderr } = await run([
    bin('spectral'),
    'lint',
    file,
    '--ruleset',
    join(ROOT, ruleset),
    '--format=json',
    '--quiet',
    '--fail-severity=error',
  ])
  let results: Json[]
  try {
    results = stdout.trim() ? JSON.parse(stdout) : []
  } catch {
    throw new Error(`spectral gave no report: ${stdout.slice(0, 500)} ${stderr.slice(-2000)}`)
  }
  return results.map((r) => ({
    rule: r.code,
    severity: SPECTRAL_SEVERITY[r.severity] ?? String(r.severity),
    where: (r.path ?? []).join('/'),
    message: r.message,
  }))
}

export const errorsOf = (problems: Problem[]) =>
  problems.filter((p) => p.severity === 'error').map((p) => `${p.rule} ${p.where}: ${p.message}`)

/** swagger-parser's validation (schema of the OpenAPI specification, references, path parameters). */
export async function swaggerParserValidate(doc: unknown) {
  await SwaggerParser.validate(structuredClone(doc) as never)
}

/** An ajv for OpenAPI 3.1 schemas: JSON Schema 2020-12, strict, formats, and OpenAPI's own keywords. */
export function openApiAjv() {
  const ajv = new Ajv2020({ strict: true, allErrors: true })
  addFormats(ajv)
  for (const keyword of ['example', 'discriminator', 'xml', 'externalDocs'])
    ajv.addKeyword({ keyword })
  return ajv
}

/** Every schema of an OpenAPI document, with a JSON pointer-ish name of where it is. */
export function schemasOf(doc: Json): [string, Json][] {
  const out: [string, Json][] = []
  for (const [path, item] of Object.entries<Json>(doc.paths ?? {}))
    for (const [method, op] of Object.entries<Json>(item)) {
      const at = `${method.toUpperCase()} ${path}`
      for (const p of op.parameters ?? []) out.push([`${at} ${p.in} ${p.name}`, p.schema])
      for (const [type, media] of Object.entries<Json>(op.requestBody?.content ?? {}))
        out.push([`${at} body ${type}`, media.schema])
      for (const [status, response] of Object.entries<Json>(op.responses ?? {})) {
        for (const [type, media] of Object.entries<Json>(response.content ?? {}))
          out.push([`${at} ${status} ${type}`, media.schema])
        for (const [name, header] of Object.entries<Json>(response.headers ?? {}))
          out.push([`${at} ${status} header ${name}`, header.schema])
      }
    }
  for (const [name, schema] of Object.entries<Json>(doc.components?.schemas ?? {}))
    out.push([`components/schemas/${name}`, schema])
  return out
}

const CHILD_MAPS = ['properties', 'patternProperties', '$defs', 'dependentSchemas']
const CHILD_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems']
const CHILD_ONES = ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains']

/** Every sub-schema, with its place, the schema itself first. */
export function walkSchema(schema: unknown, at: string, visit: (node: Json, at: string) => void) {
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return
  const node = schema as Json
  visit(node, at)
  for (const key of CHILD_MAPS)
    for (const [name, child] of Object.entries<Json>(node[key] ?? {}))
      walkSchema(child, `${at}/${key}/${name}`, visit)
  for (const key of CHILD_LISTS)
    (node[key] ?? []).forEach((child: Json, i: number) =>
      walkSchema(child, `${at}/${key}/${i}`, visit),
    )
  for (const key of CHILD_ONES) walkSchema(node[key], `${at}/${key}`, visit)
}

/** A value that satisfies the schema, built from its examples, enums and bounds. */
export function sample(schema: Json | undefined): unknown {
  if (!schema) return undefined
  if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0]
  if ('const' in schema) return schema.const
  if (Array.isArray(schema.enum)) return schema.enum.find((v: unknown) => v !== null)
  const branches = schema.anyOf ?? schema.oneOf
  if (Array.isArray(branches))
    return sample(branches.find((b: Json) => b.type !== 'null') ?? branches[0])
  const type = Array.isArray(schema.type)
    ? schema.type.find((t: string) => t !== 'null')
    : schema.type
  switch (type) {
    case 'object': {
      const out: Json = {}
      for (const [name, child] of Object.entries<Json>(schema.properties ?? {}))
        if ((schema.required ?? []).includes(name) || child.examples) out[name] = sample(child)
      return out
    }
    case 'array':
      return Array.from({ length: Math.max(1, schema.minItems ?? 1) }, () => sample(schema.items))
    case 'integer':
    case 'number':
      return schema.minimum ?? (schema.exclusiveMinimum ?? 0) + 1
    case 'boolean':
      return true
    case 'string':
      if (schema.format === 'date-time') return new Date().toISOString()
      return 'x'.repeat(Math.max(1, schema.minLength ?? 1))
    default:
      return null
  }
}

/** Makes sure Debian's promtool is there (it comes with the `prometheus` package). */
export async function promtoolCheckMetrics(text: string) {
  const { code, stdout, stderr } = await run(['promtool', 'check', 'metrics'], text)
  return { ok: code === 0, output: `${stdout}${stderr}`.trim() }
}
