// Export and import schemas (CONTRACT §8): the export query (the readings list's filters and a format)
// and the import's answer. The CSV layout itself is described in docs/storage.md.
import { t } from 'elysia'
import { Id, OneOf, timeRange } from '../../lib/schemas'

export const ExportQuery = t.Object({
  format: t.Optional(
    OneOf(['csv', 'ndjson'], {
      description:
        'csv (the default): header id,sensor_id,timestamp then one column per variable; ndjson: one JSON reading per line',
    }),
  ),
  sensor_id: t.Optional(Id),
  ...timeRange,
})
export type ExportQuery = typeof ExportQuery.static

export const ImportResult = t.Object({
  imported: t.Integer({ description: 'Readings stored (every data line)', examples: [1000] }),
})
export type ImportResult = typeof ImportResult.static

export const IMPORT_EXAMPLE =
  'sensor_id,timestamp,co2,humedad,temperatura\n1,2025-07-20T10:30:00Z,,65.2,23.5\n2,2025-07-20T10:30:00Z,415,,\n'

export const ImportBody = t.String({
  description:
    'CSV: a header `sensor_id,timestamp,<variable>,…` (an export’s leading `id` column is accepted and ignored), then one reading per line; an empty cell is a measurement the reading does not have.',
  examples: [IMPORT_EXAMPLE],
})
export type ImportBody = typeof ImportBody.static

export const CSV_EXAMPLE =
  'id,sensor_id,timestamp,co2,humedad,temperatura\n1,1,2025-07-20T10:30:00Z,,65.2,23.5\n2,2,2025-07-20T10:30:00Z,415,,\n'
export const NDJSON_EXAMPLE =
  '{"id":1,"sensor_id":1,"timestamp":"2025-07-20T10:30:00Z","values":{"humedad":65.2,"temperatura":23.5}}\n'
