// CSV import of readings (CONTRACT §8): every line checked first (a 422 naming the line and column of the
// first problem), then all rows stored in one transaction through the batch ingest's parts (sensor check,
// variable registry, insert with one event per reading or one summary event, latest values), or none.
import { CsvError, parse } from 'csv-parse/sync'
import type { Services } from '../../context'
import { insertMany } from '../../lib/crud'
import { AppError } from '../../lib/errors'
import { iso, readingTimeProblem, parseIso } from '../../lib/time'
import { updateLatest } from '../latest/service'
import { sensorStatuses } from '../liveness/service'
import { readingResource } from '../readings/service'
import { MAX_MEASUREMENTS } from '../readings/model'
import { inJsonbOrder, isVariableName, physicalBounds } from '../readings/values'
import { NAME_RULE } from '../variables/model'
import { registerVariables, rememberVariables, unregistered } from '../variables/service'

/** A 422 naming the CSV line (1 is the header) and, where there is one, the column. */
class ImportLineError extends AppError {
  constructor(line: number, column: string | undefined, message: string) {
    super(422, 'validation_error', `Line ${line}${column ? `, ${column}` : ''}: ${message}`, {
      field: column ? `line ${line}.${column}` : `line ${line}`,
      line,
    })
  }
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/
const SENSOR_ID = /^[1-9]\d{0,15}$/
const FIXED = ['sensor_id', 'timestamp']

interface Parsed {
  line: number
  cells: string[]
}

/** The CSV's records with their line numbers; a 422 naming the line the parser stopped at. */
function records(text: string): Parsed[] {
  const out: Parsed[] = []
  try {
    parse(text, {
      skip_empty_lines: true,
      on_record: (record: string[], context: { lines: number }) => {
        out.push({ line: context.lines, cells: record })
        return null
      },
    })
  } catch (error) {
    if (!(error instanceof CsvError)) throw error
    const line = (error as CsvError & { lines?: number }).lines ?? 0
    throw new ImportLineError(
      line,
      undefined,
      `${error.message.replace(/ on line \d+$/, '')}; every line needs as many cells as the header.`,
    )
  }
  return out
}

/** The header: optional `id`, then sensor_id,timestamp and at least one distinct variable name. */
function header(first: Parsed) {
  const cells = first.cells.map((c) => c.trim())
  const skipId = cells[0] === 'id'
  const names = skipId ? cells.slice(1) : cells
  const layout = `the header must be sensor_id,timestamp then variable names, such as sensor_id,timestamp,humedad,temperatura (an export's leading id column is accepted)`
  if (names[0] !== FIXED[0] || names[1] !== FIXED[1])
    throw new ImportLineError(1, undefined, `${layout}; got ${cells.join(',').slice(0, 120)}.`)
  const variables = names.slice(2)
  if (variables.length === 0)
    throw new ImportLineError(1, undefined, `${layout}; no variable column.`)
  if (variables.length > MAX_MEASUREMENTS)
    throw new ImportLineError(1, undefined, `at most ${MAX_MEASUREMENTS} variable columns.`)
  const seen = new Set<string>()
  for (const name of variables) {
    if (!isVariableName(name))
      throw new ImportLineError(
        1,
        name.slice(0, 80),
        `"${name.slice(0, 80)}" is not a valid variable name: use ${NAME_RULE}.`,
      )
    if (seen.has(name)) throw new ImportLineError(1, name, `${name} is a column twice.`)
    seen.add(name)
  }
  return { offset: skipId ? 1 : 0, variables }
}

/** One data line as a row to insert; a 422 naming the line and column of its first problem. */
function toRow(record: Parsed, offset: number, variables: string[], now: number) {
  const { line, cells } = record
  const sensor = cells[offset]!.trim()
  if (!SENSOR_ID.test(sensor))
    throw new ImportLineError(
      line,
      'sensor_id',
      `"${sensor.slice(0, 40)}" is not a sensor id (a positive integer).`,
    )
  const time = cells[offset + 1]!.trim()
  const ms = parseIso(time)
  if (ms === undefined)
    throw new ImportLineError(
      line,
      'timestamp',
      `"${time.slice(0, 40)}" is not a real date-time; use ISO 8601 such as 2025-07-20T10:30:00Z.`,
    )
  const problem = readingTimeProblem(ms, now)
  if (problem) throw new ImportLineError(line, 'timestamp', `${problem}.`)
  const values: Record<string, number> = {}
  let count = 0
  for (let i = 0; i < variables.length; i++) {
    const cell = cells[offset + 2 + i]!.trim()
    if (cell === '') continue
    const name = variables[i]!
    const value = Number(cell)
    if (!NUMBER.test(cell) || !Number.isFinite(value))
      throw new ImportLineError(
        line,
        name,
        `"${cell.slice(0, 40)}" is not a finite number; leave the cell empty when the reading has no ${name}.`,
      )
    const bounds = physicalBounds(name)
    if (bounds && (value < bounds.minimum || value > bounds.maximum))
      throw new ImportLineError(
        line,
        name,
        `${value} is outside ${bounds.minimum}..${bounds.maximum}, the physical range of ${name}.`,
      )
    values[name] = value
    count += 1
  }
  if (count === 0)
    throw new ImportLineError(
      line,
      undefined,
      'the reading has no measurement: fill at least one variable cell.',
    )
  return { sensor_id: Number(sensor), values, timestamp: ms, created_at: now }
}

/** Up to this many readings, an import emits one `created` event per reading, like a batch. */
export const IMPORT_EVENT_LIMIT = 1000

/** The one event of a larger import: a system_event on general and readings. */
function summary(stored: { id: number }[], rows: { sensor_id: number; timestamp: number }[]) {
  let from = Infinity
  let to = -Infinity
  const sensors = new Set<number>()
  for (const row of rows) {
    from = Math.min(from, row.timestamp)
    to = Math.max(to, row.timestamp)
    sensors.add(row.sensor_id)
  }
  return {
    level: 'info' as const,
    message: `Imported ${rows.length} readings of ${sensors.size} sensors, ${iso(from)} to ${iso(to)}.`,
    channel: 'readings',
    data: {
      action: 'readings_imported',
      imported: rows.length,
      first_id: stored[0]!.id,
      last_id: stored.at(-1)!.id,
      sensor_ids: [...sensors].sort((a, b) => a - b),
      from: iso(from),
      to: iso(to),
    },
  }
}

/**
 * Stores every reading of a CSV in one transaction, or none (a 422 names the first bad line). Like a
 * batch: unknown sensors are refused, new variable names registered, latest values kept, one `created`
 * event per reading up to IMPORT_EVENT_LIMIT (a larger import emits one summary system_event instead).
 * Unlike a batch (imported readings are history, not news): sensors' liveness is not touched and the
 * anomaly detector does not run.
 */
export async function importReadings(services: Services, text: unknown) {
  if (text !== undefined && typeof text !== 'string')
    throw new AppError(
      415,
      'unsupported_media_type',
      'Send the readings as CSV with Content-Type: text/csv (a JSON array goes to POST /api/v1/readings/batch).',
    )
  if (text === undefined || text.trim() === '')
    throw new AppError(
      422,
      'validation_error',
      'The CSV is empty: send a header line sensor_id,timestamp,<variable>… and one line per reading.',
      { field: 'body' },
    )
  const now = Date.now()
  const all = records(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
  const { offset, variables } = header(all[0]!)
  const width = offset + 2 + variables.length
  if (all.length < 2)
    throw new ImportLineError(
      2,
      undefined,
      'the CSV has a header but no reading; add one line per reading.',
    )
  const lines: number[] = []
  const rows: ReturnType<typeof toRow>[] = []
  for (let i = 1; i < all.length; i++) {
    const record = all[i]!
    if (record.cells.length !== width)
      throw new ImportLineError(
        record.line,
        undefined,
        `${record.cells.length} cells where the header has ${width}.`,
      )
    rows.push(toRow(record, offset, variables, now))
    lines.push(record.line)
  }
  // Measurements in the order PostgreSQL reads them back, so the event log can rebuild the frames.
  if (services.db.dialect === 'postgres')
    for (const row of rows) row.values = inJsonbOrder(row.values)
  const fresh = unregistered(services, variables)
  const each = rows.length <= IMPORT_EVENT_LIMIT
  const count = await services.emitter.transact(async (tx, emit, system) => {
    const statuses = await sensorStatuses(
      tx,
      rows.map((r) => r.sensor_id),
    )
    const missing = rows.findIndex((r) => !statuses.has(r.sensor_id))
    if (missing >= 0)
      throw new AppError(
        422,
        'unknown_reference',
        `Line ${lines[missing]}, sensor_id: sensor ${rows[missing]!.sensor_id} does not exist; create it with POST /api/v1/sensors before importing its readings.`,
        {
          field: `line ${lines[missing]}.sensor_id`,
          line: lines[missing],
          id: rows[missing]!.sensor_id,
        },
      )
    await registerVariables(tx, fresh, now)
    const stored = await insertMany(tx, each ? emit : () => undefined, readingResource, rows)
    if (!each) system(summary(stored, rows))
    await updateLatest(
      tx,
      stored.map((reading, i) => ({ ...reading, t: rows[i]!.timestamp })),
    )
    return stored.length
  })
  rememberVariables(services, fresh)
  return { imported: count }
}
