// What every request meets before routing: CORS by CORS_ORIGINS, the request body size limit, the
// per-address cap on requests in progress, JSON-only bodies and the deadline to receive a body.
import type { Server } from 'bun'
import { Elysia } from 'elysia'
import type { Config } from '../config'
import { clientAddress } from './client-address'
import { AppError } from './errors'
import { InProgress } from './in-progress'

const EXPOSED = 'X-Total-Count, Retry-After, WWW-Authenticate'
const METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS'
/** Methods that change nothing: the only ones a page of another origin may send without being listed. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * CORS_ORIGINS=* answers every origin with `Access-Control-Allow-Origin: *` (tokens travel in a
 * header, never in cookies, so no credentials are needed). With a list, a listed origin gets its
 * headers and any other origin none at all: its preflight, its writes and its WebSocket upgrade are
 * refused with 403. A browser sends some writes without asking first (a form, or fetch with a
 * text/plain body), and does not apply CORS to WebSockets, so the server checks Origin itself.
 * Clients that send no Origin (curl, services) are not browsers and pass.
 */
export function corsPolicy(config: Readonly<Config>) {
  const list = config.corsOrigins === '*' ? undefined : new Set(config.corsOrigins)
  return new Elysia({ name: 'cors-policy' }).onRequest(({ request, set }) => {
    if (list) set.headers.vary = 'Origin'
    const origin = request.headers.get('origin')
    if (!origin) return
    if (list && !list.has(origin)) {
      const preflight = request.method === 'OPTIONS'
      if (
        preflight ||
        !SAFE_METHODS.has(request.method) ||
        request.headers.get('upgrade')?.toLowerCase() === 'websocket'
      )
        throw new AppError(
          403,
          'origin_not_allowed',
          `Origin ${origin.slice(0, 100)} is not in CORS_ORIGINS; ask the operator to add it.`,
        )
      return
    }
    set.headers['access-control-allow-origin'] = list ? origin : '*'
    set.headers['access-control-expose-headers'] = EXPOSED
    if (request.method === 'OPTIONS' && request.headers.has('access-control-request-method'))
      return new Response(null, {
        status: 204,
        headers: {
          ...(set.headers as Record<string, string>),
          'access-control-allow-methods': METHODS,
          'access-control-allow-headers': 'Authorization, Content-Type',
          'access-control-max-age': '600',
        },
      })
  })
}

/**
 * Bodies larger than BODY_LIMIT_BYTES get a JSON 413 before they are read. The size must be known up
 * front, so a body sent without Content-Length (chunked) gets 411.
 */
export function bodyLimit(config: Readonly<Config>) {
  const limit = config.bodyLimitBytes
  return new Elysia({ name: 'body-limit' }).onRequest(({ request }) => {
    const length = request.headers.get('content-length')
    if (length === null) {
      if (request.headers.has('transfer-encoding'))
        throw new AppError(
          411,
          'length_required',
          'Send the request body with a Content-Length header; chunked bodies are not accepted.',
        )
      return
    }
    if (Number(length) > limit)
      throw new AppError(
        413,
        'payload_too_large',
        `The request body is ${length} bytes; at most ${limit} (BODY_LIMIT_BYTES) are accepted.`,
        { limit },
      )
  })
}

const FORM = 'application/x-www-form-urlencoded'
/**
 * Routes that take a body other than JSON, and which types: a form is read into an object, any other
 * type handed over as text. Every other body must be JSON.
 */
const OTHER_BODIES: Record<string, readonly string[]> = {
  '/auth/login': [FORM],
  '/api/v1/auth/login': [FORM],
  '/api/v1/readings/import': ['text/csv'],
}

/** The media type of a Content-Type header, lower case, without parameters. */
const mediaType = (header: string | null) => (header ?? '').split(';')[0]!.trim().toLowerCase()
const isJson = (type: string) => /^application\/([a-z0-9.!#$&^_-]+\+)?json$/.test(type)
const hasBody = (request: Request) =>
  !SAFE_METHODS.has(request.method) &&
  (Number(request.headers.get('content-length') ?? 0) > 0 ||
    request.headers.has('transfer-encoding'))

/** Answers whose connection must not be kept: the rest of its body may never come. */
const closing = (error: AppError) => {
  error.headers = { ...error.headers, connection: 'close' }
  return error
}

/**
 * Requests in progress per client address (HTTP_MAX_REQUESTS_PER_IP): past it a 429 that closes the
 * connection, so one address cannot hold every connection with bodies that never finish. A body must
 * arrive whole within HTTP_BODY_TIMEOUT seconds (408, connection closed), and is read here: JSON under
 * `application/json` or `…+json`, a form on the routes of OTHER_BODIES, and JSON under any other type
 * is refused (415).
 */
export function requestLimits(config: Readonly<Config>) {
  const { bodyTimeout, maxRequestsPerIp } = config.http
  let server: Server<unknown> | null = null
  const inProgress = new InProgress(maxRequestsPerIp, (request) =>
    clientAddress(
      config.trustProxy,
      request.headers.get('x-forwarded-for'),
      server?.requestIP(request)?.address,
    ),
  )
  return new Elysia({ name: 'request-limits' })
    .onRequest(({ request, server: current }) => {
      if (maxRequestsPerIp === 0) return
      server ??= current
      const count = inProgress.admit(request)
      if (count === undefined) return
      const refusal = new AppError(
        429,
        'too_many_requests',
        `Your address has ${count} requests in progress, the most allowed (HTTP_MAX_REQUESTS_PER_IP); wait for them to finish.`,
      )
      refusal.headers = { 'retry-after': '1' }
      throw closing(refusal)
    })
    .onAfterResponse({ as: 'global' }, ({ request }) => inProgress.release(request))
    .onParse({ as: 'global' }, async ({ request }) => {
      if (!hasBody(request)) return
      let timer: Timer | undefined
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              closing(
                new AppError(
                  408,
                  'body_timeout',
                  `The request body did not arrive within ${bodyTimeout} s (HTTP_BODY_TIMEOUT); send it faster or in smaller parts.`,
                ),
              ),
            ),
          bodyTimeout * 1000,
        )
      })
      let text: string
      try {
        text = await Promise.race([request.text(), late])
      } finally {
        clearTimeout(timer)
      }
      const type = mediaType(request.headers.get('content-type'))
      if (isJson(type)) {
        const body: unknown = JSON.parse(text)
        // JSON spells NUL \u0000 (or sends it raw): only then is the parsed body walked.
        if (text.includes('\\u0000') || text.includes('\u0000')) refuseNul('body', body)
        return body
      }
      if (OTHER_BODIES[new URL(request.url).pathname]?.includes(type)) {
        const body = type === FORM ? Object.fromEntries(new URLSearchParams(text)) : text
        refuseNul('body', body)
        return body
      }
      // Not JSON at all is a 400 (invalid_body) whatever the type; JSON sent under another type is
      // what a page of another site can send without asking (text/plain): refused, not read.
      JSON.parse(text)
      throw new AppError(
        415,
        'unsupported_media_type',
        `Send the body with Content-Type: application/json${type ? ` (got ${type.slice(0, 100)})` : ''}.`,
      )
    })
}

/** Where the first string holding a NUL character is (`[3]`, `nombre`), or undefined. */
function nulAt(value: unknown): (string | number)[] | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? [] : undefined
  if (typeof value !== 'object' || value === null) return undefined
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nulAt(value[i])
      if (found) return [i, ...found]
    }
    return undefined
  }
  for (const key in value) {
    if (key.includes('\u0000')) return [key]
    const found = nulAt((value as Record<string, unknown>)[key])
    if (found) return [key, ...found]
  }
  return undefined
}

/**
 * No text anywhere in a request may hold the NUL character: PostgreSQL cannot store it (it answered
 * 422) and SQLite stops comparing at it (`?nombre=%00` matched every row). One rule, both databases.
 * Bodies are checked as they are read (requestLimits), queries here.
 */
function refuseNul(location: 'query' | 'body', value: unknown) {
  const at = nulAt(value)
  if (!at) return
  const field =
    at.reduce<string>(
      (out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${part}` : part),
      '',
    ) || location
  throw new AppError(
    422,
    'validation_error',
    `Invalid ${location} field "${field}": text may not contain the NUL character (\\u0000); remove it and retry.`,
    { field, location },
  )
}

export const noNulText = new Elysia({ name: 'no-nul-text' }).onTransform(
  { as: 'global' },
  ({ query, request }) => {
    // A WebSocket handshake answers a bad query with its own close code (4400), after the upgrade.
    if (request.headers.get('upgrade')?.toLowerCase() === 'websocket') return
    refuseNul('query', query)
  },
)
