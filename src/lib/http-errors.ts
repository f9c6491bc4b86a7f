// The one error envelope: every failure becomes {"error","message",…} JSON with the right status.
import { Elysia, ValidationError } from 'elysia'
import type { AppContext } from '../context'
import { isConflict, isUnavailable, isUnstorableText } from '../db/errors'
import { AppError } from './errors'

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

/** TypeBox's summary, made into the end of a sentence: "should be one of: 'number', 'null'". */
function reasonOf(first: ValidationError['all'][number] | undefined): string {
  if (!first) return 'is not valid'
  if ('message' in first && first.message === 'Expected required property') return 'is required'
  const allowed = 'schema' in first ? (first.schema as { enum?: unknown[] }).enum : undefined
  if (Array.isArray(allowed))
    return `should be one of: ${allowed.map((v) => JSON.stringify(v)).join(', ')}`
  const text = (first.summary ?? ('message' in first ? first.message : '') ?? 'is not valid')
    .replace(/^Property '[^']*' /, '')
    .replace(/^Expected /, 'expected ')
  // Elysia coerces path and query numbers through a union, which lists the same type twice.
  return text.replace(
    /one of: (.*)$/,
    (_, list: string) => `one of: ${[...new Set(list.split(', '))].join(', ')}`,
  )
}

function describeValidation(error: ValidationError): ErrorEnvelope {
  const first = error.all[0]
  const where = error.type === 'params' ? 'path' : error.type
  const field = fieldName(first && 'path' in first ? first.path : undefined, where)
  const found =
    first && 'value' in first && first.value !== undefined
      ? ` (got ${JSON.stringify(first.value)?.slice(0, 80)})`
      : ''
  const subject = field === where ? `Invalid ${where}:` : `Invalid ${where} field "${field}":`
  return {
    error: 'validation_error',
    message: `${subject} ${reasonOf(first)}${found}.`,
    field,
    location: where,
  }
}

export function errorHandler({ log }: Pick<AppContext, 'log'>) {
  return new Elysia({ name: 'error-handler' }).onError(
    { as: 'global' },
    ({ code, error, set, request, path }) => {
      let status = 500
      let body: ErrorEnvelope
      if (error instanceof AppError) {
        status = error.status
        body = { error: error.code, message: error.message, ...error.details }
        if (error.headers) Object.assign(set.headers, error.headers)
      } else if (code === 'VALIDATION' && (error as ValidationError).type !== 'response') {
        status = 422
        body = describeValidation(error as ValidationError)
      } else if (code === 'PARSE') {
        status = 400
        body = {
          error: 'invalid_body',
          message:
            'The request body could not be parsed: send JSON with Content-Type: application/json.',
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
