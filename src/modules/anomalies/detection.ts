// Detection inside the transaction that stores readings: rules, detector states and open anomalies are
// read once per batch, every reading is checked in time order in memory, and only anomaly changes and
// the new states are written back (no query per reading).
import { and, inArray, sql } from 'drizzle-orm'
import type { Services } from '../../context'
import { later, type Tx } from '../../db'
import { selectByIds } from '../../db/prepared'
import { anomalies, sensors, sensorTypeThresholds } from '../../db/schema'
import {
  detectorOptions,
  higherSeverity,
  step,
  type DetectorOptions,
  type Hit,
  type Rule,
  type Severity,
  type ThresholdRule,
} from '../../intelligence/detector'
import { newState, type VariableState } from '../../intelligence/state'
import { stateKey } from '../../intelligence'
import { insertOne, updateMany, updateOne } from '../../lib/crud'
import type { Emit } from '../../realtime/emitter'
import type { StoredValues } from '../latest/service'
import type { Thresholds } from '../thresholds/model'
import { anomalyResource, transition } from './service'

type AnomalyRow = typeof anomalies.$inferSelect

const RULES: readonly Rule[] = ['threshold', 'statistical']

// A correlated subquery, not a LEFT JOIN: SQLite runs it in a tenth of the time for one sensor.
const typeRule =
  sql`(select ${sensorTypeThresholds.thresholds} from ${sensorTypeThresholds} where ${sensorTypeThresholds.tipo} = ${sensors.tipo})`.mapWith(
    sensorTypeThresholds.thresholds,
  )

/** Each sensor's rules: its type's defaults, with the sensor's own rule winning per variable. */
async function loadRules(tx: Tx, ids: number[]) {
  const out = new Map<number, Thresholds>()
  const rows = await selectByIds(tx, 'detector-rules', ids, (match) =>
    tx
      .select({ id: sensors.id, own: sensors.thresholds, type: typeRule })
      .from(sensors)
      .where(match(sensors.id)),
  )
  for (const row of rows) {
    const merged = { ...(row.type as Thresholds | null), ...(row.own as Thresholds | null) }
    if (Object.keys(merged).length > 0) out.set(row.id, merged)
  }
  return out
}

/** Open or acknowledged detector anomalies, by sensor:variable:rule (the newest when several). */
async function loadOpen(tx: Tx, ids: number[]) {
  const out = new Map<string, AnomalyRow>()
  const rows = await selectByIds(tx, 'detector-open', ids, (match) =>
    tx
      .select()
      .from(anomalies)
      .where(
        and(
          match(anomalies.sensor_id),
          inArray(anomalies.status, ['open', 'acknowledged']),
          inArray(anomalies.rule, RULES as Rule[]),
        ),
      ),
  )
  // Sorted here: an ORDER BY makes SQLite build a temporary b-tree, ten times the cost of the lookup.
  rows.sort((a, b) => a.last_seen - b.last_seen || a.id - b.id)
  for (const row of rows) out.set(`${stateKey(row.sensor_id, row.variable)}:${row.rule}`, row)
  return out
}

/** The columns a hit changes on an open anomaly. */
const changes = (row: AnomalyRow) => ({
  value: row.value,
  reading_id: row.reading_id,
  severity: row.severity,
  expected_min: row.expected_min,
  expected_max: row.expected_max,
  message: row.message,
  count: row.count,
  last_seen: row.last_seen,
  updated_at: row.updated_at,
})

/** Detector options per variable (any variable gets its own), made once per warm-up setting. */
const optionsCache = new Map<number, Map<string, DetectorOptions>>()
function optionsFor(variable: string, warmup: number) {
  let byVariable = optionsCache.get(warmup)
  if (!byVariable) optionsCache.set(warmup, (byVariable = new Map()))
  let options = byVariable.get(variable)
  if (!options) {
    options = detectorOptions(variable, warmup)
    if (byVariable.size < 10_000) byVariable.set(variable, options)
  }
  return options
}

/** What one sensor variable needs per reading, looked up once per batch. */
interface Slot {
  key: string
  state: VariableState
  rule: ThresholdRule | null
  options: DetectorOptions
}

export type DetectionInputs = ReturnType<typeof readDetectionInputs>

/**
 * What detection reads for these sensors: rules, detector states and open anomalies. Sent together and
 * before the readings are written (none of it depends on them): on PostgreSQL they travel in the
 * transaction's first round trip (postgres.js pipelines a transaction's queries).
 */
export function readDetectionInputs({ intelligence }: Services, tx: Tx, ids: number[]) {
  const inputs = Promise.all([
    loadRules(tx, ids),
    intelligence.states.take(tx, ids),
    loadOpen(tx, ids),
  ]).then(([rules, states, open]) => ({ rules, states, open }))
  // Handled here as well: the caller may fail (an unknown sensor) before it waits for them.
  inputs.catch(() => undefined)
  return inputs
}

/**
 * Checks stored readings and records what they reveal, for every measurement they carry: a hit opens
 * an anomaly (anomaly_detected) or folds into the open one of the same sensor, variable and rule
 * (updated once per batch); enough normal readings in a row resolve it (updated). Each sensor
 * variable has its own detector state and warm-up. Runs in the caller's transaction.
 */
export async function detectAnomalies(
  { intelligence }: Services,
  tx: Tx,
  emit: Emit,
  readings: readonly StoredValues[],
  inputs: DetectionInputs,
) {
  if (readings.length === 0) return
  const { rules, states, open } = await inputs
  const { warmupReadings, autoResolveReadings } = intelligence.options
  const touched = new Map<string, VariableState>()
  const dirty = new Set<string>()
  const now = Date.now()

  // Sensor variables with an open anomaly: only those need the auto-resolve check.
  const withOpen = new Set<string>()
  for (const row of open.values()) withOpen.add(stateKey(row.sensor_id, row.variable))
  const slots = new Map<number, Map<string, Slot>>()
  const slotOf = (sensorId: number, variable: string): Slot => {
    let bySensor = slots.get(sensorId)
    if (!bySensor) slots.set(sensorId, (bySensor = new Map()))
    let slot = bySensor.get(variable)
    if (slot) return slot
    const key = stateKey(sensorId, variable)
    let state = states.get(key)
    if (!state) states.set(key, (state = newState()))
    intelligence.states.evict(key, tx)
    touched.set(key, state)
    const own = rules.get(sensorId)
    const rule = own && Object.hasOwn(own, variable) ? own[variable]! : null
    slot = { key, state, rule, options: optionsFor(variable, warmupReadings) }
    bySensor.set(variable, slot)
    return slot
  }

  // Readings the stored states lag behind (PostgreSQL: another instance checked them and kept its
  // states in memory): checked again first, in the order they were; their verdicts are recorded.
  for (const reading of states.unchecked)
    for (const variable in reading.values) {
      const { state, rule, options } = slotOf(reading.sensor_id, variable)
      step(state, reading.t, reading.values[variable]!, rule, options)
    }

  const ordered = [...readings].sort((a, b) => a.t - b.t || a.id - b.id)
  for (const reading of ordered) {
    const t = reading.t
    for (const variable in reading.values) {
      const { key, state, rule, options } = slotOf(reading.sensor_id, variable)
      const hits = step(state, t, reading.values[variable]!, rule, options)
      for (const hit of hits) {
        const slot = `${key}:${hit.rule}`
        const row = open.get(slot)
        if (row) {
          fold(row, hit, reading.id, t, now)
          dirty.add(slot)
        } else {
          open.set(slot, await openAnomaly(tx, emit, reading, variable, hit, t, now))
          withOpen.add(key)
        }
      }
      if (autoResolveReadings === 0 || !withOpen.has(key)) continue
      for (const ruleName of RULES) {
        const slot = `${key}:${ruleName}`
        const row = open.get(slot)
        if (!row || state.normal[ruleName] < autoResolveReadings) continue
        await updateOne(tx, emit, anomalyResource, row.id, {
          ...changes(row),
          ...transition(row.id, row, 'resolved', now),
          updated_at: now,
        })
        open.delete(slot)
        dirty.delete(slot)
      }
    }
  }
  await updateMany(
    tx,
    emit,
    anomalyResource,
    [...dirty].map((slot) => {
      const row = open.get(slot)!
      return { id: row.id, values: changes(row) }
    }),
  )
  // Nothing waits for it: it travels with the statements after it (the event rows) and is awaited
  // before COMMIT.
  let first = Infinity
  let last = -Infinity
  for (const { id } of readings) {
    if (id < first) first = id
    if (id > last) last = id
  }
  later(tx, intelligence.states.put(tx, touched, now, { first, last }))
}

function fold(row: AnomalyRow, hit: Hit, readingId: number, t: number, now: number) {
  row.count += 1
  row.value = hit.value
  row.reading_id = readingId
  row.severity = higherSeverity(row.severity as Severity, hit.severity)
  row.expected_min = hit.expected_min
  row.expected_max = hit.expected_max
  row.message = hit.message
  row.last_seen = Math.max(row.last_seen, t)
  row.updated_at = now
}

async function openAnomaly(
  tx: Tx,
  emit: Emit,
  reading: StoredValues,
  variable: string,
  hit: Hit,
  t: number,
  now: number,
): Promise<AnomalyRow> {
  const values = {
    sensor_id: reading.sensor_id,
    reading_id: reading.id,
    variable,
    value: hit.value,
    severity: hit.severity,
    status: 'open',
    rule: hit.rule,
    kind: hit.kind,
    expected_min: hit.expected_min,
    expected_max: hit.expected_max,
    message: hit.message,
    count: 1,
    first_seen: t,
    last_seen: t,
    resolved_at: null,
    acknowledged_at: null,
    created_at: now,
    updated_at: now,
  }
  const dto = await insertOne(tx, emit, anomalyResource, values, 'anomaly_detected')
  return { ...values, id: dto.id }
}
