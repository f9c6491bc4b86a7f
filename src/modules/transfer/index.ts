// REST routes for moving readings in and out: GET /api/v1/readings/export (streamed CSV or NDJSON) and
// POST /api/v1/readings/import (CSV, all or none).
import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { errorResponse, errors } from '../../lib/schemas'
import {
  CSV_EXAMPLE,
  ExportQuery,
  IMPORT_EXAMPLE,
  ImportBody,
  ImportResult,
  NDJSON_EXAMPLE,
} from './model'
import { importReadings } from './csv-import'
import { exportReadings } from './service'

const text = (description: string, example: string) => ({
  schema: { type: 'string' as const, description },
  example,
})

export const transferModule = (ctx: AppContext) => {
  const { config, log } = ctx
  const sqlitePath = config.database.kind === 'sqlite' ? config.database.path : undefined
  return new Elysia({
    name: 'transfer',
    prefix: '/api/v1/readings',
    detail: { tags: ['readings'] },
  })
    .get(
      '/export',
      ({ query }) =>
        exportReadings(ctx, query, {
          sqlitePath,
          onError: (error) =>
            log.error('readings export failed mid-stream', { error: String(error) }),
        }),
      {
        // No `response`: Elysia would replace the 200 of `detail` (CSV or NDJSON) with a JSON one.
        query: ExportQuery,
        detail: {
          summary: 'Export readings as CSV or NDJSON (streamed)',
          description:
            'Every reading the filters (sensor_id, from, to) match, oldest first and by id at equal times, streamed in constant memory from one snapshot of the database (readings stored after the export started are not in it). CSV: header id,sensor_id,timestamp then one column per variable the exported sensors have measured, by name; an empty cell is a measurement the reading lacks. NDJSON: one {"id","sensor_id","timestamp","values"} per line. Content-Disposition names a file. The CSV imports back with POST /api/v1/readings/import.',
          responses: {
            200: {
              description: 'The readings, streamed; Content-Disposition: attachment; filename=…',
              headers: {
                'Content-Disposition': {
                  description: 'attachment; filename="readings-<time>.csv" (or .ndjson)',
                  schema: { type: 'string' },
                },
              },
              content: {
                'text/csv': text('CSV, one reading per line', CSV_EXAMPLE),
                'application/x-ndjson': text('One JSON reading per line', NDJSON_EXAMPLE),
              },
            },
          },
        },
      },
    )
    .post('/import', ({ body }) => importReadings(ctx, body as unknown), {
      // No `body` schema: Elysia would document it as JSON; the text comes from requestLimits' parser.
      response: {
        200: ImportResult,
        ...errors,
        422: errorResponse(422, {
          description:
            'A line of the CSV is wrong (cell count, number, timestamp, unknown sensor, variable name, header) or the CSV is empty; `field` and the message name the line; nothing was stored',
          message:
            'Line 7, temperatura: "caliente" is not a finite number; leave the cell empty when the reading has no temperatura.',
        }),
      },
      detail: {
        summary: 'Import readings from CSV (all or none)',
        description:
          'Content-Type: text/csv. Header sensor_id,timestamp then variable names (an export with its leading id column imports as it is); one reading per line, an empty cell a measurement the reading lacks. Every line is checked, then all are stored in one transaction, or none: a 422 names the first bad line. Like a batch, one `created` event per reading (up to 1,000; a larger import emits one system_event, action readings_imported, on general and readings) and new variables registered; as history, sensors’ liveness is left alone and the anomaly detector does not run. The body is limited by BODY_LIMIT_BYTES (413).',
        requestBody: {
          required: true,
          content: { 'text/csv': { schema: ImportBody, example: IMPORT_EXAMPLE } },
        },
      },
    })
}
