// REST routes for readings under /api/v1/readings, including the all-or-none batch.
import { Elysia, ElysiaCustomStatusResponse, t } from 'elysia'
import type { Services } from '../../context'
import { minimalAnswer, prefersMinimal } from '../../lib/http-standards'
import { checkBody } from '../../lib/json-body'
import { errors, IdParams } from '../../lib/schemas'
import {
  Reading,
  ReadingBatch,
  ReadingCreate,
  ReadingPatch,
  ReadingQuery,
  ReadingReplace,
} from './model'
import {
  createReading,
  createReadings,
  deleteReading,
  getReading,
  listReadings,
  patchReading,
  replaceReading,
} from './service'
import { checkReadingBody } from './values'

/** Measurements checked as sent (lib/json-body.ts says why). */
const readingBody = (nullable: boolean) => checkBody((body) => checkReadingBody(body, '', nullable))
const batchBody = checkBody((body) => {
  if (Array.isArray(body)) body.forEach((item, i) => checkReadingBody(item, `[${i}].`, false))
})

/**
 * `Prefer: return=minimal` (RFC 7240) on the writes that store readings: 201 with no body instead of the
 * stored readings, so a gateway sending thousands at once is not sent them back (and compressed) too.
 */
const minimal =
  (location?: (created: Reading) => string) =>
  ({
    request,
    response,
    set,
  }: {
    request: Request
    response: unknown
    set: { status?: unknown }
  }) => {
    if (!prefersMinimal(request)) return
    set.status = 201
    const created = response instanceof ElysiaCustomStatusResponse ? response.response : response
    // Elysia types an afterHandle's result as the route's schema; a Response is taken as is at run time.
    return minimalAnswer(201, location?.(created as Reading)) as never
  }
const MINIMAL_NOTE =
  ' With `Prefer: return=minimal` (RFC 7240) the answer is 201 with no body and `Preference-Applied: return=minimal`'

export const readingsModule = (services: Services) =>
  new Elysia({ name: 'readings', prefix: '/api/v1/readings', detail: { tags: ['readings'] } })
    .get(
      '/',
      async ({ query, set }) => {
        const page = await listReadings(services, query)
        set.headers['x-total-count'] = String(page.total)
        return page.items
      },
      {
        query: ReadingQuery,
        response: { 200: t.Array(Reading), ...errors },
        detail: {
          summary: 'List readings',
          description: 'Newest first unless order=asc; the total count is in X-Total-Count.',
        },
      },
    )
    .get('/:id', ({ params }) => getReading(services, params.id), {
      params: IdParams,
      response: { 200: Reading, ...errors },
      detail: {
        summary: 'Get a reading',
        description: 'The reading with this id; 404 when there is none.',
      },
    })
    .post('/', async ({ body, status }) => status(201, await createReading(services, body)), {
      parse: 'json',
      transform: readingBody(false),
      body: ReadingCreate,
      afterHandle: minimal((reading) => `/api/v1/readings/${reading.id}`),
      response: { 201: Reading, ...errors },
      detail: {
        summary: 'Store a reading',
        description:
          'The original body (temperatura, humedad) and/or `values` with any named measurements; at least one. A name not seen before is registered as a variable (GET /api/v1/variables). Emits `created` on readings, readings:<sensor_id>, sensors:<sensor_id> and general.' +
          MINIMAL_NOTE +
          ', with `Location`.',
      },
    })
    .post(
      '/batch',
      async ({ body, status }) => status(201, await createReadings(services, body, true)),
      {
        parse: 'json',
        transform: batchBody,
        body: ReadingBatch,
        afterHandle: minimal(),
        response: { 201: t.Array(Reading), ...errors },
        detail: {
          summary: 'Store many readings at once',
          description:
            'One transaction: if any item is invalid nothing is stored and the error names it (e.g. [3].sensor_id). One event per reading.' +
            MINIMAL_NOTE +
            '.',
        },
      },
    )
    .put('/:id', ({ params, body }) => replaceReading(services, params.id, body), {
      params: IdParams,
      parse: 'json',
      transform: readingBody(false),
      body: ReadingReplace,
      response: { 200: Reading, ...errors },
      detail: {
        summary: 'Replace a reading',
        description:
          'A correction: stored as sent but not checked for anomalies. Emits `updated` on readings, readings:<sensor_id>, sensors:<sensor_id>, general.',
      },
    })
    .patch('/:id', ({ params, body }) => patchReading(services, params.id, body), {
      params: IdParams,
      parse: 'json',
      transform: readingBody(true),
      body: ReadingPatch,
      response: { 200: Reading, ...errors },
      detail: {
        summary: 'Correct some fields of a reading',
        description:
          'Measurements named (at the top level or in `values`) are set, null removes one; the others stay. Not checked for anomalies. Emits `updated` on readings, readings:<sensor_id>, sensors:<sensor_id>, general.',
      },
    })
    .delete(
      '/:id',
      async ({ params, status }) => {
        await deleteReading(services, params.id)
        return status(204, undefined)
      },
      {
        params: IdParams,
        response: { 204: t.Void(), ...errors },
        detail: {
          summary: 'Delete a reading',
          description:
            'Emits `deleted` on readings, readings:<sensor_id>, sensors:<sensor_id>, general.',
        },
      },
    )
