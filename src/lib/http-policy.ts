// What every request meets before routing: CORS by CORS_ORIGINS and the request body size limit.
import { Elysia } from 'elysia'
import type { Config } from '../config'
import { AppError } from './errors'

const EXPOSED = 'X-Total-Count, Retry-After, WWW-Authenticate'
const METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS'

/**
 * CORS_ORIGINS=* answers every origin with `Access-Control-Allow-Origin: *` (tokens travel in a
 * header, never in cookies, so no credentials are needed). With a list, a listed origin gets its
 * headers and any other origin none at all: its preflight is refused with 403 and so is its WebSocket
 * upgrade, since browsers do not apply CORS to WebSockets. Clients that send no Origin (curl, services)
 * are not browsers and pass.
 */
export function corsPolicy(config: Readonly<Config>) {
  const list = config.corsOrigins === '*' ? undefined : new Set(config.corsOrigins)
  return new Elysia({ name: 'cors-policy' }).onRequest(({ request, set }) => {
    if (list) set.headers.vary = 'Origin'
    const origin = request.headers.get('origin')
    if (!origin) return
    if (list && !list.has(origin)) {
      const preflight = request.method === 'OPTIONS'
      if (preflight || request.headers.get('upgrade')?.toLowerCase() === 'websocket')
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
