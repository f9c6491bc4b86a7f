// REST route for history: GET /api/v1/readings/aggregate (CONTRACT §8).
import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context'
import { errorResponse, errors } from '../../lib/schemas'
import { AggregateQuery, AggregateRow } from './model'
import { aggregate } from './service'

export const historyModule = (
  ctx: Pick<AppContext, 'db' | 'emitter' | 'intelligence' | 'config'>,
) =>
  new Elysia({ name: 'history', prefix: '/api/v1/readings', detail: { tags: ['readings'] } }).get(
    '/aggregate',
    ({ query }) => aggregate(ctx, ctx.config, query),
    {
      query: AggregateQuery,
      response: {
        200: t.Array(AggregateRow),
        ...errors,
        422: errorResponse(422, {
          description:
            'A query field breaks its rule (naming it), an unknown sensor, or a query that could answer more than AGGREGATE_MAX_ROWS rows',
          error: 'too_many_rows',
          message:
            'This query could answer up to 2592000 rows (sensors × buckets in the range), more than the 100000 allowed (AGGREGATE_MAX_ROWS): narrow from/to, use a larger bucket, or ask for fewer sensors.',
        }),
      },
      detail: {
        summary: 'Aggregate readings of one variable in time buckets',
        description:
          'One row per sensor and bucket that holds readings, in time order (then by sensor). `bucket` is `<n>s|m|h|d` (1s to 30d), buckets start at UTC epoch multiples of the size; `from` is inclusive, `to` exclusive. `fn` is any of avg, min, max, count, sum, first, last. Whole minutes and hours come from the rollups (also after READINGS_RETENTION deleted the raw readings), the rest from raw readings; the answer is exact at any moment. A query that could answer more than AGGREGATE_MAX_ROWS rows (sensors × buckets) is a 422.',
      },
    },
  )
