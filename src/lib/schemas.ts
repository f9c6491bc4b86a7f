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

export const ErrorBody = t.Object(
  {
    error: t.String({ description: 'Short machine-readable code', examples: ['not_found'] }),
    message: t.String({ description: 'What went wrong and what to do about it' }),
    field: t.Optional(t.String({ description: 'The offending field, for validation errors' })),
  },
  { additionalProperties: true },
)

/** The error responses most routes can give; spread into a route's `response`. */
export const errors = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  422: ErrorBody,
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
