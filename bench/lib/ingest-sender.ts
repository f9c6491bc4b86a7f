// The fleet's senders inside a load-generator process: lanes of their own sensors, each sending its
// readings (single or in batches) and waiting for each answer, and the upper-bound load of identical ones.
import { fleetBody, Lane, SAMPLED, sampleKey, type FleetReading } from './fleet'
import { encode, newHistogram } from './histogram'
import type { Command, SendReply } from './protocol'

const JSON_HEADERS = { 'content-type': 'application/json' }
const MINIMAL_HEADERS = { ...JSON_HEADERS, prefer: 'return=minimal' }

let fleet: { lanes: Lane[]; identical: boolean; vars: 2 | 5; startMs: number } | undefined

/** This worker's lanes of the fleet; their simulated clocks carry on from phase to phase. */
export function setFleet(cmd: Extract<Command, { t: 'fleet' }>) {
  fleet = {
    lanes: cmd.lanes.map((sensors) => new Lane(sensors, cmd.seed, cmd.startMs, cmd.vars)),
    identical: cmd.identical,
    vars: cmd.vars,
    startMs: cmd.startMs,
  }
  return {}
}

/** The upper-bound load: one sensor, the same values, no timestamp. */
const IDENTICAL = { sensor_id: 1, temperatura: 21.5, humedad: 50 }

/** Closed-loop ingest of the fleet: each lane sends its own sensors' readings and waits for each answer. */
export async function ingest(
  cmd: Extract<Command, { t: 'ingest' }>,
  now: () => number,
): Promise<SendReply> {
  const f = fleet
  if (!f) throw new Error('ingest before fleet')
  const url = `${cmd.base}/api/v1/readings${cmd.batch > 1 ? '/batch' : ''}`
  const headers = cmd.minimal ? MINIMAL_HEADERS : JSON_HEADERS
  const hist = newHistogram()
  const samples: number[] = []
  let created = 0
  let errors = 0
  let error: string | undefined
  let first = 0
  let last = 0
  const deadline = now() + cmd.durationMs
  const body = (lane: Lane): { text: string; sampled: FleetReading[] } => {
    if (f.identical)
      return {
        text: JSON.stringify(cmd.batch > 1 ? new Array(cmd.batch).fill(IDENTICAL) : IDENTICAL),
        sampled: [],
      }
    const readings = lane.take(cmd.batch)
    const bodies = readings.map((r) => fleetBody(r, f.vars))
    return {
      text: JSON.stringify(cmd.batch > 1 ? bodies : bodies[0]),
      sampled: readings.filter((r) => SAMPLED(r.sensor_id)),
    }
  }
  const run = async (lane: Lane) => {
    while (now() < deadline) {
      const { text, sampled } = body(lane)
      const sentAt = now()
      if (first === 0) first = sentAt
      try {
        const res = await fetch(url, { method: 'POST', headers, body: text })
        const answer = await res.text()
        if (res.status === 201) {
          created += cmd.batch
          for (const r of sampled) samples.push(sampleKey(r.sensor_id, r.ms, f.startMs), sentAt)
        } else {
          errors += 1
          error ??= `${res.status} ${answer.slice(0, 200)}`
        }
      } catch (e) {
        errors += 1
        error ??= String(e)
      }
      last = now()
      hist.recordValue(Math.max(1, Math.round((last - sentAt) * 1000)))
    }
  }
  await Promise.all(f.lanes.map(run))
  const encoded = encode(hist)
  hist.destroy()
  return { ok: created, errors, error, first, last, hist: encoded, behind: 0, samples }
}
