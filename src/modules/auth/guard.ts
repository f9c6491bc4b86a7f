// Who may call what over REST: the AUTH_MODE=required policy on every request, device keys (in every
// mode: their own sensor's readings and nothing else), and the `auth` macro.
import { Elysia } from 'elysia'
import type { AuthReads, Config } from '../../config'
import { ForbiddenError, UnauthorizedError } from '../../lib/errors'
import { isDeviceKey, type DeviceKeyCheck } from '../device-keys/service'
import { allows, ROLES, type Need } from './permissions'
import type { TokenClaims, Tokens } from './tokens'

const READS = new Set(['GET', 'HEAD', 'OPTIONS'])
/** Login needs no token; logout needs one of any role (its own `auth: 'token'`), not a writer's. */
const OPEN_API_PATHS = new Set(['/api/v1/auth/login', '/api/v1/auth/logout'])
const WS_PATHS = new Set(['/api/v1/ws', '/api/v1/ws/secure'])
const STATS_PATHS = new Set(['/api/v1/ws/stats', '/api/v1/ws/stats/:channel'])

/**
 * Under AUTH_MODE=required: writes below /api/ need operator or admin, the stats any valid token, and
 * REST reads nothing unless AUTH_READS=token. Login and the WebSocket upgrades are left alone (their
 * admission closes with 4401/4403 instead). `route` is the route that matched, not the URL: the URL's
 * path can be read in more than one way (Bun's router and Elysia's disagree on odd Host headers), the
 * matched route cannot.
 */
function needFor(route: string, method: string, reads: AuthReads): Need | undefined {
  if (!route.startsWith('/api/') || OPEN_API_PATHS.has(route) || WS_PATHS.has(route))
    return undefined
  if (!READS.has(method)) return 'write'
  return reads === 'token' || STATS_PATHS.has(route) ? 'token' : undefined
}

const NEEDS: Record<Need, string> = {
  token: 'a valid token',
  write: 'the operator or admin role (viewers can only read)',
  admin: 'the admin role',
}

/** The roles that may do what `need` asks, as the OpenAPI document lists them (`x-roles`). */
const rolesFor = (need: Need) => ROLES.filter((role) => allows(role, need))

/** The only routes a device key opens (the matched route, with and without the trailing slash). */
const DEVICE_ROUTES = new Set(['/api/v1/readings', '/api/v1/readings/', '/api/v1/readings/batch'])

const bearerOf = (request: Request) => {
  const header = request.headers.get('authorization')
  return header ? /^Bearer +(\S+) *$/i.exec(header)?.[1] : undefined
}

/** The sensor ids a reading body names: one object, or a batch's items. Unknown shapes name none. */
function sensorIdsOf(body: unknown): unknown[] {
  const items = Array.isArray(body) ? body : [body]
  return items.flatMap((item) =>
    item && typeof item === 'object' && 'sensor_id' in item
      ? [(item as { sensor_id: unknown }).sensor_id]
      : [],
  )
}

export type Guard = ReturnType<typeof createGuard>

export function createGuard(config: Readonly<Config>, tokens: Tokens, deviceKey?: DeviceKeyCheck) {
  const verified = new WeakMap<Request, TokenClaims>()

  /**
   * A request with a device key: only a POST of readings (single or batch), every reading for the
   * key's own sensor (403 otherwise); an unknown or revoked key is 401. Checked before the body is
   * validated; a reading whose sensor_id is missing is left to the schema's 422.
   */
  const admitDevice = async (key: string, route: string, method: string, body: unknown) => {
    if (method !== 'POST' || !DEVICE_ROUTES.has(route))
      throw new ForbiddenError(
        'A device key can only store readings of its own sensor: POST /api/v1/readings or /api/v1/readings/batch.',
      )
    const device = deviceKey ? await deviceKey(key) : undefined
    if (!device)
      throw new UnauthorizedError(
        'The device key is unknown or revoked: issue a new one with POST /api/v1/sensors/:id/keys.',
        'Bearer error="invalid_token"',
      )
    const other = sensorIdsOf(body).find((id) => id !== undefined && Number(id) !== device.sensorId)
    if (other !== undefined)
      throw new ForbiddenError(
        `This device key belongs to sensor ${device.sensorId}; it cannot store readings of sensor ${String(other).slice(0, 20)}.`,
      )
  }

  /** The claims of the request's bearer token, checked once per request. */
  const authenticate = async (request: Request): Promise<TokenClaims> => {
    const known = verified.get(request)
    if (known) return known
    const header = request.headers.get('authorization')
    const match = header ? /^Bearer +(\S+) *$/i.exec(header) : null
    if (!match)
      throw new UnauthorizedError(
        header
          ? 'The Authorization header must be "Bearer <token>"; get a token at POST /auth/login.'
          : undefined,
      )
    const claims = await tokens.verify(match[1])
    if (!claims)
      throw new UnauthorizedError(
        'The bearer token is malformed, badly signed or expired: log in again at POST /auth/login.',
        'Bearer error="invalid_token"',
      )
    verified.set(request, claims)
    return claims
  }

  const authorize = async (request: Request, need: Need) => {
    const claims = await authenticate(request)
    if (!allows(claims.role, need))
      throw new ForbiddenError(
        `User "${claims.sub}" has the ${claims.role} role; this needs ${NEEDS[need]}.`,
      )
    return claims
  }

  return {
    /**
     * Global: applies AUTH_MODE=required to every route registered after it, before its body is
     * validated. Routes of /api/ must be registered after it (the auth tests check every documented one).
     */
    policy: new Elysia({ name: 'auth-policy' }).onTransform(
      { as: 'global' },
      async ({ request, route, body }) => {
        const bearer = bearerOf(request)
        if (
          bearer &&
          isDeviceKey(bearer) &&
          (route.startsWith('/api/') || route.startsWith('/auth/'))
        )
          return admitDevice(bearer, route, request.method, body)
        if (config.authMode !== 'required') return
        const need = needFor(route, request.method, config.authReads)
        if (need) await authorize(request, need)
      },
    ),
    /** The roles AUTH_MODE lets call a route (Elysia path), for the OpenAPI document; undefined: anyone. */
    rolesFor(method: string, route: string) {
      if (config.authMode !== 'required') return undefined
      const need = needFor(route, method, config.authReads)
      return need && rolesFor(need)
    },
    /** `auth: 'admin'` on a route: checked in any AUTH_MODE, before the body is validated; gives `user`. */
    macro: new Elysia({ name: 'auth-macro' }).macro({
      auth: (need: Need) => ({
        // The OpenAPI document's lock and role note (src/lib/openapi.ts).
        detail: { security: [{ bearerAuth: [] }], ...{ 'x-roles': rolesFor(need) } },
        async transform({ request }) {
          await authorize(request, need)
        },
        resolve: ({ request }) => ({ user: verified.get(request)! }),
      }),
    }),
  }
}
