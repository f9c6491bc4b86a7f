// Detector states as a fleet that has been running leaves them. A fresh server starts every sensor
// variable with an empty state (no daily profile, no envelope: about 1 KB of JSON), while a fleet's
// states have learned days (about 2.3 KB), and every ingest writes them back: measured on empty ones,
// ingest looks cheaper than it is. Each sensor variable is stepped over two days of its own series (a
// reading a minute, then its last ten minutes a reading a second) up to the fleet's start, with the
// detector of the code under measurement, and written into the fresh database before the first reading.
import { Database } from 'bun:sqlite'
import postgres from 'postgres'
import { detectorOptions, step } from '../../src/intelligence/detector'
import { newState, type VariableState } from '../../src/intelligence/state'
import { readingAt, type VariableCount } from './fleet'

const DAY = 86_400_000
const DAYS = 2
const DENSE_MS = 600_000

export interface GrownState {
  sensor_id: number
  variable: string
  state: VariableState
}

let cached: { key: string; rows: GrownState[] } | undefined

/** The grown states of sensors 1..`sensors` at `startMs` (computed once per fleet, then reused). */
export function grownStates(
  seed: number,
  sensors: number,
  startMs: number,
  vars: VariableCount,
): GrownState[] {
  const key = `${seed}:${sensors}:${startMs}:${vars}`
  if (cached?.key === key) return cached.rows
  const options = detectorOptions(undefined, 30)
  const rows: GrownState[] = []
  for (let sensor = 1; sensor <= sensors; sensor++) {
    const states = new Map<string, VariableState>()
    const feed = (ms: number) => {
      const { values } = readingAt(seed, sensor, ms, vars)
      for (const variable in values) {
        let state = states.get(variable)
        if (!state) states.set(variable, (state = newState()))
        step(state, ms, values[variable as keyof typeof values]!, null, options)
      }
    }
    for (let ms = startMs - DAYS * DAY; ms < startMs - DENSE_MS; ms += 60_000) feed(ms)
    for (let ms = startMs - DENSE_MS; ms < startMs; ms += 1000) feed(ms)
    for (const [variable, state] of states) rows.push({ sensor_id: sensor, variable, state })
  }
  cached = { key, rows }
  return rows
}

/** Writes the states into a Vigía database (`sqlite:<file>` or a PostgreSQL URL) whose sensors exist. */
export async function seedStates(databaseUrl: string, rows: GrownState[]) {
  const now = Date.now()
  if (databaseUrl.startsWith('sqlite:')) {
    const db = new Database(databaseUrl.slice('sqlite:'.length))
    try {
      db.exec('PRAGMA busy_timeout = 5000')
      const insert = db.prepare(
        'insert into detector_state (sensor_id, variable, rev, state, updated_at) values (?, ?, ?, ?, ?)',
      )
      db.transaction(() => {
        for (const r of rows)
          insert.run(r.sensor_id, r.variable, 'grown', JSON.stringify(r.state), now)
      })()
    } finally {
      db.close()
    }
    return
  }
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  try {
    const body = rows.map((r) => ({ ...r, rev: 'grown', updated_at: now }))
    await sql.unsafe(
      `insert into detector_state (sensor_id, variable, rev, state, updated_at)
       select sensor_id, variable, rev, state, updated_at
       from json_populate_recordset(null::detector_state, $1::text::json)`,
      [JSON.stringify(body)],
    )
  } finally {
    await sql.end({ timeout: 2 })
  }
}
