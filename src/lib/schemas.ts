// Schemas shared by every module: the error envelope, id params, pagination and time-range queries.
import { FormatRegistry, Type, type IntegerOptions, type SchemaOptions } from '@sinclair/typebox'
import { t } from 'elysia'
import { ISO_DATE_TIME } from './time'

/**
 * A number in a path or query is written in decimal: `42`, `-3`, `2.5`. Elysia reads those texts
 * through these two formats, whose own versions take whatever Number() takes (`0x1`, `1e0`, ` 1`),
 * so `/sensors/0x1` was sensor 1. Replaced here, once, for every route.
 */
const DECIMAL_INTEGER = /^-?(0|[1-9]\d*)$/
const DECIMAL_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?$/
FormatRegistry.Set(
  'integer',
  (value) => DECIMAL_INTEGER.test(value) && Number.isSafeInteger(Number(value)),
)
FormatRegistry.Set(
  'numeric',
  (value) => DECIMAL_NUMBER.test(value) && Number.isFinite(Number(value)),
)

/**
 * `date-time` appears only in answers (requests take Timestamp's pattern), each written by iso().
 * Elysia's version also takes other spellings ("Sun Jul 20 2025 …") and tries three patterns and a
 * Date per value: 0.3 µs, twice per reading of a batch's answer. This is RFC 3339's grammar alone.
 */
const RFC3339_DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/
FormatRegistry.Set('date-time', (value) => RFC3339_DATE_TIME.test(value))

const errorProperties = {
  error: t.String({ description: 'Short machine-readable code' }),
  message: t.String({ description: 'What went wrong and what to do about it' }),
  field: t.Optional(t.String({ description: 'The offending field, for validation errors' })),
}

/** The error envelope, for a status with no entry in ERROR_STATUSES. */
export const ErrorBody = t.Object(errorProperties, { additionalProperties: true })

/**
 * What each error status means on this server, with an example body of that status: the one source for
 * the error responses routes declare and for those the OpenAPI document adds (src/lib/openapi.ts).
 */
export const ERROR_STATUSES = {
  400: {
    description: 'The request body could not be parsed as JSON',
    error: 'invalid_body',
    message: 'The request body could not be parsed: send JSON with Content-Type: application/json.',
  },
  401: {
    description:
      'No bearer token, or one that is malformed, badly signed, expired or revoked (WWW-Authenticate says which)',
    error: 'unauthorized',
    message: 'A valid bearer token is required: log in at POST /auth/login.',
  },
  403: {
    description: "The token is valid but its user's role may not do this",
    error: 'forbidden',
    message:
      'User "ana" has the viewer role; this needs the operator or admin role (viewers can only read).',
  },
  404: {
    description: 'Nothing exists with the id or name given in the path',
    error: 'not_found',
    message: 'Sensor 42 does not exist.',
  },
  405: {
    description: 'The resource does not support this method (Allow lists those it does)',
    error: 'method_not_allowed',
    message:
      'Predictions are computed and cannot be edited: request a new one with POST /api/v1/predictions.',
  },
  408: {
    description:
      'The request body did not arrive whole within HTTP_BODY_TIMEOUT; the connection is closed',
    error: 'body_timeout',
    message:
      'The request body did not arrive within 10 s (HTTP_BODY_TIMEOUT); send it faster or in smaller parts.',
  },
  409: {
    description:
      'The change conflicts with stored data: a taken unique value, or a state that forbids it',
    error: 'conflict',
    message: 'The change conflicts with existing data (a reference or a unique value).',
  },
  411: {
    description: 'A request body was sent without Content-Length (chunked)',
    error: 'length_required',
    message: 'Send the request body with a Content-Length header; chunked bodies are not accepted.',
  },
  413: {
    description: 'The request body is larger than BODY_LIMIT_BYTES',
    error: 'payload_too_large',
    message:
      'The request body is 20971520 bytes; at most 10485760 (BODY_LIMIT_BYTES) are accepted.',
  },
  415: {
    description: 'The request body is not of a media type this operation accepts',
    error: 'unsupported_media_type',
    message: 'Send the body as JSON with Content-Type: application/json.',
  },
  422: {
    description:
      'A path, query or body field breaks the schema or names a row that does not exist; `field` names it',
    error: 'validation_error',
    message: 'Invalid body field "temperatura": expected number (got "caliente").',
    field: 'temperatura',
  },
  426: {
    description: 'A plain HTTP request on a WebSocket endpoint: connect with a WebSocket client',
    error: 'upgrade_required',
    message:
      '/api/v1/ws is a WebSocket endpoint: connect with a WebSocket client (ws://host/api/v1/ws?channel=general).',
  },
  429: {
    description:
      'Too many requests in progress from this address (HTTP_MAX_REQUESTS_PER_IP); retry after Retry-After seconds',
    error: 'too_many_requests',
    message:
      'Your address has 256 requests in progress, the most allowed (HTTP_MAX_REQUESTS_PER_IP); wait for them to finish.',
  },
  503: {
    description:
      'The database cannot be reached right now (or a queue is full); retry after the seconds in Retry-After',
    error: 'database_unavailable',
    message:
      'The database cannot be reached right now (it may be restarting or busy); retry in a few seconds.',
  },
} as const satisfies Record<
  number,
  { description: string; error: string; message: string; field?: string }
>

export type ErrorStatus = keyof typeof ERROR_STATUSES

/**
 * The error envelope as the response of one status: its meaning, and an example of that status. A route
 * whose answer of that status means something narrower says so, with its own example.
 */
export function errorResponse(
  status: ErrorStatus,
  own: { description?: string; error?: string; message?: string } = {},
) {
  const { description, ...example } = { ...ERROR_STATUSES[status], ...own }
  return t.Object(errorProperties, { additionalProperties: true, description, examples: [example] })
}

/** The error responses most routes can give; spread into a route's `response`. */
export const errors = {
  400: errorResponse(400),
  401: errorResponse(401),
  403: errorResponse(403),
  404: errorResponse(404),
  409: errorResponse(409),
  422: errorResponse(422),
} as const

const ID_RANGE = { minimum: 1, maximum: Number.MAX_SAFE_INTEGER }
/** An id in a path or a query (decimal digits). */
export const Id = t.Integer({ ...ID_RANGE, examples: [1] })
export const IdParams = t.Object({ id: Id })

/**
 * An integer in a JSON body: a JSON number, never a string. Elysia's t.Integer also takes "2"
 * (it is meant for paths and queries, where everything is text).
 */
export const BodyInt = (options: IntegerOptions = {}) => Type.Integer(options)
/** An id in a JSON body (`"sensor_id": 1`, not `"1"`). */
export const BodyId = BodyInt({ ...ID_RANGE, examples: [1] })

export const Timestamp = (description = 'ISO 8601 date-time; UTC when no zone is given') =>
  t.String({ pattern: ISO_DATE_TIME, description, examples: ['2025-07-20T10:30:00Z'] })

export const pagination = {
  limit: t.Optional(
    t.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'Page size (1-1000)' }),
  ),
  offset: t.Optional(
    t.Integer({
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      default: 0,
      description: 'Rows to skip',
    }),
  ),
}

export const timeRange = {
  from: t.Optional(Timestamp('Only rows at or after this instant')),
  to: t.Optional(Timestamp('Only rows at or before this instant')),
}

/**
 * One of fixed values, with no default. Elysia's t.UnionEnum defaults to its first value, which
 * silently fills in a missing required field, resets fields a PATCH leaves out, and turns an
 * absent list filter into a filter on that value.
 */
export const OneOf = <const T extends readonly [string, ...string[]]>(
  values: T,
  options: SchemaOptions = {},
) => t.UnionEnum(values, { default: undefined, ...options })

export const Order = t.Optional(
  OneOf(['asc', 'desc'], { description: 'Sort by time; desc (newest first) when omitted' }),
)

/** At least one non-blank character and no control characters. */
export const TEXT_PATTERN = '^[^\\u0000-\\u001f]*[^\\s\\u0000-\\u001f][^\\u0000-\\u001f]*$'

/** Text a person types: trimmed length 1..max, no control characters. */
export const Text = (max: number, example: string) =>
  t.String({ minLength: 1, maxLength: max, pattern: TEXT_PATTERN, examples: [example] })
