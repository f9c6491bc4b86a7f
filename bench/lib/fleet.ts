// The realistic load: a fleet of sensors, each with its own series per variable (a daily cycle, noise, an
// occasional spike), one reading per sensor per second of simulated time, timestamps some days back and
// increasing per sensor. Every value is a pure function of (seed, sensor, second, variable), so the
// load-generator processes and the reference writers produce the very same readings.

/** The five variables of a reading once the server accepts `values` (CONTRACT §7); the first two otherwise. */
export const VARIABLES = ['temperatura', 'humedad', 'co2', 'presion', 'pm25'] as const
export type Variable = (typeof VARIABLES)[number]

/** 2: top-level temperatura/humedad (the original body); 5: `values` with all five. */
export type VariableCount = 2 | 5

export interface FleetReading {
  sensor_id: number
  /** Epoch milliseconds, a whole second. */
  ms: number
  values: Partial<Record<Variable, number>>
}

/** Where simulated time starts: midnight UTC, `days` days before now (so the series are in the past). */
export function fleetStart(days = 7, at = Date.now()): number {
  return Math.floor(at / 86_400_000) * 86_400_000 - days * 86_400_000
}

/** 32-bit integer hash of four numbers → uniform in [0, 1). */
function uniform(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b)
  h = Math.imul(h ^ (b + 0x632be5ab) ^ (h >>> 13), 0xc2b2ae35)
  h = Math.imul(h ^ (c + 0x1b873593) ^ (h >>> 16), 0x27d4eb2f)
  h = Math.imul(h ^ (d + 0x165667b1) ^ (h >>> 15), 0x85ebca6b)
  h ^= h >>> 16
  h = Math.imul(h, 0x7feb352d)
  h ^= h >>> 15
  h = Math.imul(h, 0x846ca68b)
  h ^= h >>> 16
  return (h >>> 0) / 4294967296
}

/** About N(0, 1): the sum of three uniforms, rescaled (cheap, bounded at ±3). */
const gauss = (seed: number, s: number, t: number, v: number) =>
  (uniform(seed, s, t, v) + uniform(seed, s, t, v + 16) + uniform(seed, s, t, v + 32) - 1.5) * 2

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits

/** How often a reading of one variable is a spike (about one an hour per sensor variable). */
export const SPIKE_PROBABILITY = 1 / 3600

/** Per sensor: where it sits (offsets), how much its day swings, how noisy it is. */
function profile(seed: number, sensor: number) {
  const u = (k: number) => uniform(seed, sensor, -1, k)
  return {
    base: 16 + 10 * u(0),
    swing: 2 + 4 * u(1),
    shift: Math.floor(u(2) * 7200) - 3600,
    noise: 0.1 + 0.2 * u(3),
    humid: 50 + 20 * u(4),
    co2: 300 + 500 * u(5),
    pressure: 1005 + 15 * u(6),
    pm: 4 + 8 * u(7),
  }
}

type Profile = ReturnType<typeof profile>
const profiles = new Map<string, Profile>()

function profileOf(seed: number, sensor: number): Profile {
  const key = `${seed}:${sensor}`
  let p = profiles.get(key)
  if (!p) profiles.set(key, (p = profile(seed, sensor)))
  return p
}

/** The reading of `sensor` at `ms` (a whole second), `count` variables. */
export function readingAt(
  seed: number,
  sensor: number,
  ms: number,
  count: VariableCount,
): FleetReading {
  const p = profileOf(seed, sensor)
  const t = Math.floor(ms / 1000)
  // Position in the day, shifted per sensor; cycle peaks mid-afternoon, is lowest before dawn.
  const day = ((((t + p.shift) % 86_400) + 86_400) % 86_400) / 86_400
  const cycle = Math.sin(2 * Math.PI * (day - 0.375))
  const spike = (v: number) => uniform(seed, sensor, t, v + 64) < SPIKE_PROBABILITY
  let temperatura = p.base + p.swing * cycle + p.noise * gauss(seed, sensor, t, 0)
  if (spike(0)) temperatura += uniform(seed, sensor, t, 80) < 0.5 ? 12 : -12
  let humedad = p.humid - 12 * cycle + 0.8 * gauss(seed, sensor, t, 1)
  if (spike(1)) humedad += 25
  const values: FleetReading['values'] = {
    temperatura: round(temperatura, 2),
    humedad: round(Math.min(100, Math.max(0, humedad)), 1),
  }
  if (count === 5) {
    // Occupancy: CO2 rises through the working day.
    const occupied = day > 0.35 && day < 0.75 ? Math.sin((Math.PI * (day - 0.35)) / 0.4) : 0
    let co2 = 420 + p.co2 * occupied + 12 * gauss(seed, sensor, t, 2)
    if (spike(2)) co2 += 1500
    const weather = Math.sin((2 * Math.PI * t) / (3.1 * 86_400))
    let pm25 = p.pm * (1.4 + 0.6 * cycle) + 1.2 * gauss(seed, sensor, t, 4)
    if (spike(4)) pm25 += 80
    values.co2 = Math.round(co2)
    values.presion = round(p.pressure + 6 * weather + 0.2 * gauss(seed, sensor, t, 3), 1)
    values.pm25 = round(Math.max(0, pm25), 1)
  }
  return { sensor_id: sensor, ms, values }
}

/** The request body of one reading, as a client of that server version would send it. */
export function fleetBody(
  r: FleetReading,
  count: VariableCount,
  iso = new Date(r.ms).toISOString(),
) {
  return count === 5
    ? { sensor_id: r.sensor_id, values: r.values, timestamp: iso }
    : {
        sensor_id: r.sensor_id,
        temperatura: r.values.temperatura,
        humedad: r.values.humedad,
        timestamp: iso,
      }
}

/**
 * One sender's share of the fleet: its own sensors, read round-robin, one round per simulated second.
 * A sender waits for each answer before its next request and no two senders share a sensor, so each
 * sensor's readings are committed in timestamp order.
 */
export class Lane {
  private cursor = 0
  /** Simulated seconds since the fleet's start. */
  second = 0

  constructor(
    readonly sensors: number[],
    readonly seed: number,
    readonly startMs: number,
    readonly count: VariableCount,
  ) {
    if (sensors.length === 0) throw new Error('a lane needs at least one sensor')
  }

  next(): FleetReading {
    const r = readingAt(
      this.seed,
      this.sensors[this.cursor]!,
      this.startMs + this.second * 1000,
      this.count,
    )
    if (++this.cursor === this.sensors.length) {
      this.cursor = 0
      this.second += 1
    }
    return r
  }

  take(n: number): FleetReading[] {
    const out = new Array<FleetReading>(n)
    for (let i = 0; i < n; i++) out[i] = this.next()
    return out
  }
}

/** Deals `sensors` to `lanes` lanes round-robin (lane i gets sensors i, i + lanes, …). */
export function deal(sensors: number[], lanes: number): number[][] {
  const out = Array.from({ length: Math.min(lanes, sensors.length) }, () => [] as number[])
  sensors.forEach((s, i) => out[i % out.length]!.push(s))
  return out
}

/** Readings of these sensors are timed end to end (request sent → subscriber has it). */
export const SAMPLED = (sensor: number) => sensor % 16 === 1

/** A key for one sampled reading that both ends compute from (sensor, timestamp). */
export const sampleKey = (sensor: number, ms: number, startMs: number) =>
  ((ms - startMs) / 1000) * 100_000 + sensor
