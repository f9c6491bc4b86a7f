// The OpenAPI document's one post-processing step. @elysiajs/openapi generates paths and schemas from the
// route schemas; finishDocument turns that into a valid OpenAPI 3.1 document (docs/api.md lists each change).
import { ERROR_STATUSES, errorResponse, type ErrorStatus } from './schemas'

type Json = Record<string, any>

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])
const ALL_ROLES = ['admin', 'operator', 'viewer']

/** Keys whose value is a map of name → schema, a list of schemas, or one schema. */
const SCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']
const SCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems']
const SCHEMA_ONES = [
  'items',
  'additionalProperties',
  'unevaluatedProperties',
  'unevaluatedItems',
  'not',
  'if',
  'then',
  'else',
  'contains',
  'propertyNames',
]

const isObject = (value: unknown): value is Json =>
  !!value && typeof value === 'object' && !Array.isArray(value)

/** Elysia's t.Integer / t.Numeric accept a numeric string beside the number: `{type:string, format:integer}`. */
const isCoercionBranch = (schema: unknown) =>
  isObject(schema) && schema.type === 'string' && ['integer', 'numeric'].includes(schema.format)

const isNullSchema = (schema: unknown) =>
  isObject(schema) && schema.type === 'null' && !schema.anyOf && !schema.oneOf

/**
 * One JSON Schema node made plain 2020-12: the numeric-string branch of coerced numbers dropped (the
 * parameter or field is a number; the string form is Elysia's leniency, not the contract), OpenAPI 3.0's
 * `nullable` replaced by a `null` type, and a nullable enum that actually admits null.
 */
export function plainSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(plainSchema)
  if (!isObject(node)) return node
  let out: Json = { ...node }
  for (const key of SCHEMA_MAPS)
    if (isObject(out[key]))
      out[key] = Object.fromEntries(
        Object.entries(out[key]).map(([name, child]) => [name, plainSchema(child)]),
      )
  for (const key of SCHEMA_LISTS) if (Array.isArray(out[key])) out[key] = out[key].map(plainSchema)
  for (const key of SCHEMA_ONES) if (isObject(out[key])) out[key] = plainSchema(out[key])
  delete out.nullable

  for (const key of ['anyOf', 'oneOf'] as const) {
    let branches = out[key]
    if (!Array.isArray(branches)) continue
    if (branches.some(isCoercionBranch) && !branches.every(isCoercionBranch))
      branches = branches.filter((branch: unknown) => !isCoercionBranch(branch))
    const { [key]: _, ...rest } = out
    const others = branches.filter((branch: unknown) => !isNullSchema(branch))
    if (branches.length === 1) out = { ...rest, ...branches[0] }
    else if (
      branches.length === 2 &&
      others.length === 1 &&
      typeof others[0].type === 'string' &&
      !others[0].anyOf &&
      !others[0].oneOf &&
      !others[0].allOf &&
      !others[0].$ref
    )
      out = { ...rest, ...others[0], type: [others[0].type, 'null'] }
    else out[key] = branches
  }
  if (Array.isArray(out.type) && out.type.includes('null')) {
    if ('const' in out) {
      out.enum = [out.const]
      delete out.const
    }
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null]
  }
  if (isCoercionBranch({ ...out, type: 'string' }) && out.type !== 'string') delete out.format
  return out
}

const HEADERS: Record<string, Json> = {
  'WWW-Authenticate': {
    description: 'The Bearer challenge; error="invalid_token" when a token was sent but refused',
    schema: { type: 'string', examples: ['Bearer error="invalid_token"'] },
  },
  'Retry-After': {
    description: 'Seconds to wait before retrying',
    schema: { type: 'integer', minimum: 0, examples: [5] },
  },
  Allow: {
    description: 'The methods this resource supports',
    schema: { type: 'string', examples: ['GET, DELETE'] },
  },
  Upgrade: {
    description: 'The protocol to switch to',
    schema: { type: 'string', const: 'websocket' },
  },
  'X-Total-Count': {
    description: 'How many rows match the filters, across every page',
    schema: { type: 'integer', minimum: 0, examples: [1250] },
  },
}

const HEADERS_OF_STATUS: Record<string, string[]> = {
  '401': ['WWW-Authenticate'],
  '405': ['Allow'],
  '426': ['Upgrade'],
  '429': ['Retry-After'],
  '503': ['Retry-After'],
}

const isErrorEnvelope = (schema: unknown) =>
  isObject(schema) && isObject(schema.properties?.error) && isObject(schema.properties?.message)

const GENERATED_DESCRIPTION = /^Response for status \d+$/

/** A response as `errors` (src/lib/schemas.ts) declares it, or with no description of its own. */
const isGeneric = (status: string, response: Json | undefined) =>
  !response?.description ||
  GENERATED_DESCRIPTION.test(response.description) ||
  response.description === ERROR_STATUSES[Number(status) as ErrorStatus]?.description

/** A success response's description when the route gave none. */
function successDescription(status: string, method: string, op: Json, paginated: boolean) {
  const schema = op.responses[status]?.content?.['application/json']?.schema
  if (status === '101') return 'Switching Protocols: the WebSocket is open'
  if (status === '204') return 'Done; there is no body'
  if (status === '201') return 'Created: the stored entity, as a GET of it answers'
  if (method === 'get' && schema?.type === 'array')
    return paginated
      ? 'One page of the matching rows; X-Total-Count has how many match in all'
      : 'Every matching row'
  if (method === 'get') return 'The requested resource'
  if (method === 'put' || method === 'patch') return 'The entity as stored after the change'
  return 'Done: the outcome of the request'
}

export interface DocumentOptions {
  info: Json
  tags: Json[]
  /** The roles that may call an operation (Elysia path, upper-case method); undefined: no token needed. */
  rolesFor(method: string, path: string): readonly string[] | undefined
}

/**
 * Which error statuses an operation can give, from what it takes and who may call it: true adds the
 * generic response when the route declared none, false drops a generic one it cannot give (a route's own
 * description keeps it), undefined leaves the route's declaration alone.
 */
function errorStatuses(method: string, path: string, op: Json, roles?: readonly string[]) {
  const body = !!op.requestBody
  const upgrade = !!op.responses?.['426']
  const statuses: Record<string, boolean | undefined> = {
    '400': body,
    '401': !!roles,
    '403': !!roles && roles.length < ALL_ROLES.length,
    '404': path.includes('{'),
    '408': body,
    '409': ['get', 'head', 'options'].includes(method) ? false : undefined,
    '411': body,
    '413': body,
    '415': body,
    '422': body || (op.parameters?.length ?? 0) > 0,
    // Requests in progress per address (HTTP_MAX_REQUESTS_PER_IP) are counted on every route.
    '429': true,
    '503': /^\/(api|auth)\//.test(path) && !upgrade,
  }
  return statuses
}

function finishOperation(method: string, path: string, op: Json, options: DocumentOptions) {
  const roles: readonly string[] | undefined =
    op['x-roles'] ?? options.rolesFor(method.toUpperCase(), path.replace(/\{(\w+)\}/g, ':$1'))
  if (roles) {
    op['x-roles'] = roles
    op.security = [{ bearerAuth: [] }]
    const who = roles.length === ALL_ROLES.length ? 'any user' : `role ${roles.join(' or ')}`
    op.description = `${op.description ?? ''}\n\nNeeds a bearer token of ${who}.`.trim()
  } else op.security = []

  for (const parameter of op.parameters ?? []) parameter.schema = plainSchema(parameter.schema)
  for (const media of Object.values<Json>(op.requestBody?.content ?? {}))
    media.schema = plainSchema(media.schema)

  const responses: Json = (op.responses ??= {})
  const applies = errorStatuses(method, path, op, roles)
  for (const [status, wanted] of Object.entries(applies)) {
    if (wanted === false && isGeneric(status, responses[status])) delete responses[status]
    else if (wanted)
      responses[status] ??= {
        content: { 'application/json': { schema: errorResponse(Number(status) as ErrorStatus) } },
      }
  }
  const paginated =
    method === 'get' &&
    ['limit', 'offset'].every((name) =>
      (op.parameters ?? []).some((p: Json) => p.in === 'query' && p.name === name),
    )
  for (const [status, response] of Object.entries<Json>(responses)) {
    const content = response.content ?? {}
    // Elysia's t.Void() comes out as `content: {type: "void"}`: a response with no body has no content.
    for (const key of Object.keys(content)) if (!key.includes('/')) delete content[key]
    if (Object.keys(content).length === 0) delete response.content
    for (const media of Object.values<Json>(content)) {
      media.schema = plainSchema(JSON.parse(JSON.stringify(media.schema ?? {})))
      const known = ERROR_STATUSES[Number(status) as ErrorStatus]
      if (known && isErrorEnvelope(media.schema) && !media.schema.examples) {
        const { description: _, ...example } = known
        media.schema.examples = [example]
      }
    }
    if (!response.description || GENERATED_DESCRIPTION.test(response.description))
      response.description =
        ERROR_STATUSES[Number(status) as ErrorStatus]?.description ??
        successDescription(status, method, op, paginated)
    const headers = [...(HEADERS_OF_STATUS[status] ?? [])]
    if (paginated && status === '200') headers.push('X-Total-Count')
    if (headers.length)
      response.headers = {
        ...Object.fromEntries(headers.map((name) => [name, HEADERS[name]])),
        ...response.headers,
      }
  }
  op.responses = Object.fromEntries(
    Object.entries(responses).sort(([a], [b]) => a.localeCompare(b)),
  )
}

/**
 * The generated paths and schemas made into the served document: paths without a trailing slash, only
 * HTTP methods (a WebSocket route's query goes to its GET, which gains the 101 answer), plain 2020-12
 * schemas, every error status the operation can give with an example of that status and its headers,
 * and the bearer security each operation needs on this server.
 */
export function finishDocument(
  generated: { paths: Json; components?: Json },
  options: DocumentOptions,
) {
  const paths: Json = {}
  for (const [rawPath, item] of Object.entries<Json>(generated.paths)) {
    const path = rawPath.length > 1 ? rawPath.replace(/\/+$/, '') : rawPath
    const target: Json = (paths[path] ??= {})
    for (const [key, value] of Object.entries<Json>(item)) {
      if (key === 'ws') continue
      target[key] = JSON.parse(JSON.stringify(value))
    }
    const upgrade = item.ws
    if (upgrade && target.get) {
      target.get.parameters ??= upgrade.parameters
      target.get.responses ??= {}
      target.get.responses['101'] ??= {
        description:
          'Switching Protocols: the WebSocket is open; its messages are described in the AsyncAPI document at /asyncapi.json',
      }
    }
  }
  const operationIds = new Set<string>()
  for (const [path, item] of Object.entries<Json>(paths)) {
    for (const [method, op] of Object.entries<Json>(item)) {
      if (!HTTP_METHODS.has(method)) {
        if (!['summary', 'description', 'parameters', 'servers'].includes(method))
          delete item[method]
        continue
      }
      finishOperation(method, path, op, options)
      let id = op.operationId ?? method
      while (operationIds.has(id)) id += '_'
      operationIds.add(id)
      op.operationId = id
    }
  }
  const schemas = Object.fromEntries(
    Object.entries<Json>(generated.components?.schemas ?? {}).map(([name, schema]) => [
      name,
      plainSchema(schema),
    ]),
  )
  // A tag a route uses but the list does not declare is declared (by name), so no operation is orphaned.
  const tags = [...options.tags]
  for (const item of Object.values<Json>(paths))
    for (const op of Object.values<Json>(item))
      for (const name of op?.tags ?? [])
        if (!tags.some((tag) => tag.name === name)) tags.push({ name })
  return {
    openapi: '3.1.1',
    info: options.info,
    servers: [{ url: '/', description: 'This server' }],
    tags,
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'A token from POST /auth/login, sent as Authorization: Bearer <token>',
        },
      },
    },
  }
}
