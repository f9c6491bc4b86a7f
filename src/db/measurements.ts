// One variable of a reading's `values` as an SQL expression, on either database: what queries over one
// variable (history, forecasts, aggregates) select and filter on.
import { sql, type SQL } from 'drizzle-orm'
import { isSqlite, type Tx } from '.'
import { readings } from './schema'

/**
 * `readings.values.<variable>` as a double, null when the reading does not measure it. The name is
 * passed as a parameter, never spliced into the SQL.
 */
export function measurement(tx: Tx, variable: string): SQL<number | null> {
  return isSqlite(tx)
    ? sql<number | null>`json_extract(${readings.values}, ${`$.${variable}`})`
    : sql<number | null>`(${readings.values} ->> ${variable})::double precision`
}
