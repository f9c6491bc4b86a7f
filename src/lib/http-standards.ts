// HTTP conventions of every answer: zstd/brotli/gzip for larger compressible bodies, ETag/304 and
// Cache-Control on static content, the methods a known path serves (for 405 with Allow), and `Prefer: return=minimal`.
import { promisify } from 'node:util'
import { brotliCompress, constants, gzip } from 'node:zlib'
import compressible from 'compressible'
import { Elysia, ElysiaCustomStatusResponse, StatusMap } from 'elysia'
import Negotiator from 'negotiator'
import parsePrefer from 'parse-prefer-header'

/** Smaller bodies go out as they are: compressing them saves less than it costs. */
export const COMPRESS_MIN_BYTES = 1024
type Encoding = 'zstd' | 'br' | 'gzip'
type Kind = 'dynamic' | 'static'

const brotli = promisify(brotliCompress)
const gzipAsync = promisify(gzip)
type Bytes = Uint8Array<ArrayBuffer>
/**
 * Answers built per request go out as zstd 3 where the client takes it (Bun's fetch and current
 * browsers do): on a 1,000-reading batch answer it made brotli 4's size in a third of its time (0.95
 * against 2.7 ms), then brotli 4, then gzip 6. Static content is compressed once, so it takes brotli 9
 * first, the smallest. All of it runs off the event loop.
 */
const PREFERRED: Record<Kind, readonly Encoding[]> = {
  dynamic: ['zstd', 'br', 'gzip'],
  static: ['br', 'zstd', 'gzip'],
}
const LEVELS = { dynamic: { zstd: 3, br: 4, gzip: 6 }, static: { zstd: 12, br: 9, gzip: 9 } }
// zstd through Bun's own call: node:zlib's goes through a stream on the event loop (about 60 µs of a
// 1,000-reading answer there, against 10-15; 220 µs of CPU in all against 340-480).
const compress = (data: Bytes, encoding: Encoding, kind: Kind): Promise<Bytes> =>
  encoding === 'zstd'
    ? (Bun.zstdCompress(data, { level: LEVELS[kind].zstd }) as Promise<Bytes>)
    : encoding === 'br'
      ? brotli(data, {
          params: {
            [constants.BROTLI_PARAM_QUALITY]: LEVELS[kind].br,
            [constants.BROTLI_PARAM_SIZE_HINT]: data.byteLength,
          },
        })
      : gzipAsync(data, { level: LEVELS[kind].gzip })

/** The encoding to answer with, by the request's Accept-Encoding (q-values included), ties by `kind`. */
export function chooseEncoding(request: Request, kind: Kind = 'dynamic'): Encoding | undefined {
  const header = request.headers.get('accept-encoding')
  if (!header) return undefined
  const negotiator = new Negotiator({ headers: { 'accept-encoding': header } })
  // negotiator 1.x takes the server's preference for ties; @types/negotiator still describes 0.6.
  const encodings = negotiator.encodings as (available: string[], options: object) => string[]
  const preferred = PREFERRED[kind]
  return encodings.call(negotiator, [...preferred], { preferred: [...preferred] })[0] as
    Encoding | undefined
}

const worthCompressing = (type: string | null | undefined, bytes: number) =>
  bytes >= COMPRESS_MIN_BYTES && !!type && compressible(type) === true

function addVary(headers: Record<string, unknown>, value: string) {
  const vary = typeof headers.vary === 'string' ? headers.vary : ''
  if (!vary.toLowerCase().includes(value.toLowerCase()))
    headers.vary = vary ? `${vary}, ${value}` : value
}

/**
 * Global: compresses JSON, text and other compressible bodies of at least COMPRESS_MIN_BYTES for clients
 * that accept it. Responses a route built itself (static content, streams) are left as they are: the
 * static ones compress themselves once (StaticContent), and a stream must not be read whole.
 */
export const compression = new Elysia({ name: 'compression' }).mapResponse(
  { as: 'global' },
  // A hook that returns nothing empties an error's body (Elysia 1.4's error path takes its result as
  // is), so what is not compressed is handed back unchanged.
  ({ request, response, set }) => {
    const out = compressed(request, response, set)
    return out instanceof Promise
      ? out.then((done) => done ?? (response as Response))
      : (out ?? (response as Response))
  },
)

/**
 * The response compressed (a promise), or a JSON body below the threshold as the Response this hook
 * serialized it into (Elysia would serialize it a second time), or undefined (also from the promise):
 * left as it is.
 */
function compressed(
  request: Request,
  response: unknown,
  set: { status?: number | keyof typeof StatusMap; headers: Record<string, unknown> },
): Response | Promise<Response | undefined> | undefined {
  let value: unknown = response
  let status = typeof set.status === 'number' ? set.status : StatusMap[set.status ?? 'OK']
  if (value instanceof ElysiaCustomStatusResponse) {
    status = value.code
    value = value.response
  }
  if (value === null || value === undefined || value instanceof Response) return
  const headers = set.headers as Record<string, string>
  if (headers['content-encoding']) return
  let type = headers['content-type']
  if (typeof value === 'string') {
    if (value.length < COMPRESS_MIN_BYTES) return
    return encoded(request, headers, status, type ?? 'text/plain;charset=utf-8', value)
  }
  if (value instanceof Blob) {
    if (value.size < COMPRESS_MIN_BYTES) return
    type ??= value.type
    if (!worthCompressing(type, value.size)) return
    const blobType = type
    return value.bytes().then((bytes) => encoded(request, headers, status, blobType, bytes))
  }
  if (typeof value !== 'object') return
  const body = JSON.stringify(value)
  type ??= 'application/json;charset=utf-8'
  if (body.length < COMPRESS_MIN_BYTES)
    return new Response(body, { status, headers: { 'content-type': type } })
  return encoded(request, headers, status, type, body)
}

/** A body past the threshold, compressed for the client when its type is worth it. */
function encoded(
  request: Request,
  headers: Record<string, string>,
  status: number,
  type: string,
  body: string | Bytes,
): Response | Promise<Response> | undefined {
  const bytes: Bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body
  if (!worthCompressing(type, bytes.byteLength)) return
  addVary(headers, 'Accept-Encoding')
  const encoding = chooseEncoding(request)
  if (!encoding) return new Response(bytes, { status, headers: { 'content-type': type } })
  headers['content-encoding'] = encoding
  return compress(bytes, encoding, 'dynamic').then(
    (out) => new Response(out, { status, headers: { 'content-type': type } }),
  )
}

/** Does the request ask for `Prefer: return=minimal` (RFC 7240)? */
export function prefersMinimal(request: Request): boolean {
  const header = request.headers.get('prefer')
  if (header === null) return false
  // The header as clients send it, taken whole: the parser (which camel-cases every name through
  // lodash) was 2 % of a single POST's CPU.
  if (header === 'return=minimal') return true
  return String(parsePrefer(header).return).toLowerCase() === 'minimal'
}

/**
 * What a write that honours `Prefer: return=minimal` answers instead of its representation: the status,
 * no body, `Preference-Applied`, and where the created resource is when there is one.
 */
export function minimalAnswer(status: number, location?: string): Response {
  const headers: Record<string, string> = { 'preference-applied': 'return=minimal' }
  if (location) headers.location = location
  return new Response(null, { status, headers })
}

const etagOf = (bytes: Bytes) =>
  `W/"${Bun.hash(bytes).toString(36)}-${bytes.byteLength.toString(36)}"`

/** Does If-None-Match name this ETag (weak comparison, as RFC 9110 asks for GET and HEAD)? */
function notModified(request: Request, etag: string) {
  const header = request.headers.get('if-none-match')
  if (!header) return false
  if (header.trim() === '*') return true
  const bare = etag.replace(/^W\//, '')
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === bare)
}

/**
 * Content that does not change while it is served (a file, a bundle, a generated document): its ETag,
 * Cache-Control, and each encoding compressed once and kept.
 */
export class StaticContent {
  readonly etag: string
  private readonly encoded = new Map<Encoding, Promise<Bytes>>()
  constructor(
    readonly bytes: Bytes,
    readonly type: string,
    readonly cacheControl = 'no-cache',
  ) {
    this.etag = etagOf(bytes)
  }

  static async of(blob: Blob, cacheControl?: string) {
    return new StaticContent(
      new Uint8Array(await blob.arrayBuffer()),
      blob.type || 'application/octet-stream',
      cacheControl,
    )
  }

  /** 304 when the client holds this version, else the content, compressed when that helps. */
  async respond(request: Request): Promise<Response> {
    const compressible = worthCompressing(this.type, this.bytes.byteLength)
    const headers: Record<string, string> = {
      etag: this.etag,
      'cache-control': this.cacheControl,
    }
    if (compressible) headers.vary = 'Accept-Encoding'
    if (notModified(request, this.etag)) return new Response(null, { status: 304, headers })
    headers['content-type'] = this.type
    const encoding = compressible ? chooseEncoding(request, 'static') : undefined
    if (!encoding) return new Response(this.bytes, { headers })
    let encoded = this.encoded.get(encoding)
    if (!encoded) {
      encoded = compress(this.bytes, encoding, 'static')
      this.encoded.set(encoding, encoded)
    }
    headers['content-encoding'] = encoding
    return new Response(await encoded, { headers })
  }
}

/** A file served as StaticContent, read again when it changes on disk. */
export function staticFile(path: string, cacheControl?: string) {
  let held: { modified: number; content: Promise<StaticContent> } | undefined
  return async (request: Request) => {
    const file = Bun.file(path)
    const modified = file.lastModified
    if (held?.modified !== modified)
      held = { modified, content: StaticContent.of(file, cacheControl) }
    return (await held.content).respond(request)
  }
}

interface RouteLike {
  method: string
  path: string
}

/**
 * The methods a path is served with, from the app's routes (`:param` and `*` patterns): what a 405
 * lists in Allow. GET brings HEAD; WebSocket routes count as GET. Empty when no route has the path.
 */
export function allowedMethods(routes: readonly RouteLike[], path: string): string[] {
  const methods = new Set<string>()
  for (const route of routes) {
    if (!patternOf(route.path).test(path)) continue
    const method = route.method === 'WS' ? 'GET' : route.method
    if (method === 'ALL') return []
    methods.add(method)
    if (method === 'GET') methods.add('HEAD')
  }
  if (methods.size) methods.add('OPTIONS')
  const order = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
  return [...methods].sort((a, b) => order.indexOf(a) - order.indexOf(b))
}

const patterns = new Map<string, RegExp>()
function patternOf(path: string) {
  let pattern = patterns.get(path)
  if (!pattern) {
    const source = path
      .replace(/\/+$/, '')
      .split('/')
      .map((part) =>
        part === '*'
          ? '.*'
          : part.startsWith(':')
            ? '[^/]+'
            : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
      )
      .join('/')
    pattern = new RegExp(`^${source}/?$`)
    patterns.set(path, pattern)
  }
  return pattern
}
