// The one error envelope: every failure becomes {"error","message",…} JSON with the right status.
import type { TSchema } from '@sinclair/typebox'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'
import { Elysia, ValidationError } from 'elysia'
import type { AppContext } from '../context'
import { isConflict, isUnavailable, isUnstorableText } from '../db/errors'
import { AppError } from './errors'
import { TEXT_PATTERN } from './schemas'
import { ISO_DATE_TIME } from './time'

export interface ErrorEnvelope {
  error: string
  message: string
  [extra: string]: unknown
}

/** "/items/0/sensor_id" → "items[0].sensor_id"; "" → the whole value. */
export function fieldName(path: string | undefined, where: string): string {
  if (!path || path === '/') return where
  return path
    .split('/')
    .filter(Boolean)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce(
      (out, part) => (/^\d+$/.test(part) ? `${out}[${part}]` : out ? `${out}.${part}` : part),
      '',
    )
}

/** Type checks, as opposed to constraints: failing one only says the value is of another kind. */
const KIND_ERRORS = new Set<number>([
  ValueErrorType.Array,
  ValueErrorType.Boolean,
  ValueErrorType.Integer,
  ValueErrorType.Literal,
  ValueErrorType.Null,
  ValueErrorType.Number,
  ValueErrorType.Object,
  ValueErrorType.String,
  ValueErrorType.Undefined,
])

/** Elysia lets numbers arrive as numeric strings through a `format: integer|numeric` branch. */
const isCoercionBranch = (e: ValueError) =>
  e.type === ValueErrorType.StringFormat && ['integer', 'numeric'].includes(e.schema.format)

/**
 * The error that says what is wrong: inside a union (nullable fields, coerced numbers) the branch
 * of the value's own kind failed on a constraint (a range, a length), and that is the reason.
 */
function explain(e: ValueError): { leaf: ValueError; kindOnly: boolean } {
  if (e.type !== ValueErrorType.Union)
    return { leaf: e, kindOnly: KIND_ERRORS.has(e.type) || isCoercionBranch(e) }
  for (const branch of e.errors) {
    const inner = branch.First()
    if (!inner) continue
    const found = explain(inner)
    if (!found.kindOnly) return found
  }
  return { leaf: e, kindOnly: true }
}

/** How a path or query number must be written (see the formats in schemas.ts). */
const WRITTEN: Record<string, string> = {
  integer: 'an integer written in decimal digits, such as 42',
  numeric: 'a number written in decimal, such as 2.5',
}

/** "integer or null" for the union of a nullable, coerced integer. */
function kinds(schema: TSchema): string[] {
  if (Array.isArray(schema.anyOf)) {
    const all = [...new Set(schema.anyOf.flatMap(kinds))]
    // A coerced number is a text branch and a number branch: the text's rule says it all.
    return all.some((k) => Object.values(WRITTEN).includes(k))
      ? all.filter((k) => k !== 'integer' && k !== 'number')
      : all
  }
  if (typeof schema.format === 'string') return [WRITTEN[schema.format] ?? schema.format]
  return typeof schema.type === 'string' ? [schema.type] : []
}

const PATTERN_REASONS: Record<string, string> = {
  [ISO_DATE_TIME]: 'must be an ISO 8601 date-time such as 2025-07-20T10:30:00Z',
  [TEXT_PATTERN]: 'must contain text and no control characters',
}

/** The end of a sentence saying what the value must be: "must be one of: asc, desc". */
function reasonOf(e: ValueError): string {
  if (e.value === undefined && e.type !== ValueErrorType.Object) return 'is required'
  if (e.type === ValueErrorType.Union) return `must be ${kinds(e.schema).join(' or ')}`
  if (Array.isArray(e.schema.enum)) return `must be one of: ${e.schema.enum.join(', ')}`
  if (e.type === ValueErrorType.StringPattern && PATTERN_REASONS[e.schema.pattern])
    return PATTERN_REASONS[e.schema.pattern]!
  return e.message.replace(/^Expected /, 'expected ')
}

type Raw = Record<string, unknown> | undefined

/**
 * Elysia checks a coerced path or query number on its own, without its name (elysia#1660); find
 * the parameter whose text, as sent, is that number (the parsed query already holds defaults).
 */
function locateCoerced(value: unknown, params: Raw, url: string) {
  const query = Object.fromEntries(new URL(url).searchParams)
  for (const [where, raw] of [
    ['path', params],
    ['query', query],
  ] as const) {
    for (const [key, text] of Object.entries(raw ?? {}))
      if (typeof text === 'string' && text.trim() !== '' && Number(text) === value)
        return { where, key }
  }
  return undefined
}

function describeValidation(error: ValidationError, params: Raw, url: string): ErrorEnvelope {
  const first = error.all[0] as ValueError | undefined
  let where: string = error.type === 'params' ? 'path' : error.type
  let path = first?.path
  if (error.type === 'property') {
    const hit = locateCoerced(error.value, params, url)
    where = hit?.where ?? 'request'
    path = hit && `/${hit.key}`
  }
  const field = fieldName(path, where)
  const leaf = first && explain(first).leaf
  const found =
    leaf && leaf.value !== undefined ? ` (got ${JSON.stringify(leaf.value)?.slice(0, 80)})` : ''
  const subject = field === where ? `Invalid ${where}:` : `Invalid ${where} field "${field}":`
  return {
    error: 'validation_error',
    message: `${subject} ${leaf ? reasonOf(leaf) : 'is not valid'}${found}.`,
    field,
    location: where,
  }
}

/**
 * `allow(path)`: the methods the app serves on a path (src/lib/http-standards.ts), so a known path asked
 * with another method answers 405 with Allow rather than 404.
 */
export function errorHandler(
  { log }: Pick<AppContext, 'log'>,
  allow: (path: string) => string[] = () => [],
) {
  return new Elysia({ name: 'error-handler' }).onError(
    { as: 'global' },
    ({ code, error: thrown, set, request, path, ...ctx }) => {
      let status = 500
      let body: ErrorEnvelope
      // Elysia wraps what a parse hook throws (the body deadline) in its ParseError.
      const cause = code === 'PARSE' ? (thrown as { cause?: unknown }).cause : undefined
      const error = cause instanceof AppError ? cause : thrown
      if (error instanceof AppError) {
        status = error.status
        body = { error: error.code, message: error.message, ...error.details }
        if (error.headers) Object.assign(set.headers, error.headers)
      } else if (code === 'VALIDATION' && (error as ValidationError).type !== 'response') {
        status = 422
        const { params } = ctx as { params?: Raw }
        body = describeValidation(error as ValidationError, params, request.url)
      } else if (code === 'PARSE') {
        status = 400
        body = {
          error: 'invalid_body',
          message:
            'The request body could not be parsed: send JSON with Content-Type: application/json.',
        }
      } else if (code === 'NOT_FOUND' && allow(path).length) {
        const methods = allow(path).join(', ')
        if (request.method === 'OPTIONS')
          return new Response(null, {
            status: 204,
            headers: { ...(set.headers as Record<string, string>), allow: methods },
          })
        status = 405
        set.headers.allow = methods
        body = {
          error: 'method_not_allowed',
          message: `${request.method} is not served on ${path}; it answers ${methods}.`,
        }
      } else if (code === 'NOT_FOUND') {
        status = 404
        body = {
          error: 'route_not_found',
          message: `No route for ${request.method} ${path}; the API is described at /swagger.`,
        }
      } else if (isConflict(error)) {
        status = 409
        body = {
          error: 'conflict',
          message: 'The change conflicts with existing data (a reference or a unique value).',
        }
      } else if (isUnstorableText(error)) {
        status = 422
        body = {
          error: 'validation_error',
          message: 'Text may not contain the NUL character (\\u0000); remove it and retry.',
        }
      } else if (isUnavailable(error)) {
        status = 503
        set.headers['retry-after'] = '5'
        body = {
          error: 'database_unavailable',
          message:
            'The database cannot be reached right now (it may be restarting or busy); retry in a few seconds.',
        }
      } else {
        log.error('unhandled error', {
          method: request.method,
          path,
          code: String(code),
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        })
        body = {
          error: 'internal_error',
          message: 'Something went wrong on our side; it has been logged. Please retry.',
        }
      }
      set.status = status
      set.headers['content-type'] = 'application/json; charset=utf-8'
      return body
    },
  )
}
