// The fleet the ingest phases send: its sensors created through the API, and what the build under test
// accepts (`values` or the original two variables), with the frame it sends, which the references copy.
import type { Ctx } from '../lib/context'
import { LOAD } from '../lib/context'
import { fleetStart, readingAt, type VariableCount } from '../lib/fleet'
import type { FrameTemplate } from '../lib/layout'
import { call, startServer, type RunningServer } from '../lib/servers'

/** Creates the fleet's sensors 1..n through the API (16 at a time). */
export async function createFleet(server: RunningServer, n: number) {
  let next = 0
  const lane = async () => {
    while (next < n) {
      next += 1
      const r = await call(server.base, 'POST', '/api/v1/sensors', {
        tipo: 'temperatura',
        modelo: 'DHT22',
      })
      if (r.status !== 201) throw new Error(`creating a sensor answered ${r.status}`)
    }
  }
  await Promise.all(Array.from({ length: 16 }, lane))
}

/** Every frame a WebSocket gets, kept; `find` waits for the first that matches (seen before or later). */
function frames(ws: WebSocket) {
  const seen: any[] = []
  const waiters = new Set<() => void>()
  ws.addEventListener('message', (e) => {
    seen.push(JSON.parse(String(e.data)))
    for (const w of waiters) w()
  })
  return {
    find(pick: (m: any) => boolean, ms = 10_000): Promise<any> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = seen.find(pick)
          if (!m) return
          waiters.delete(check)
          clearTimeout(timer)
          resolve(m)
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`no matching frame within ${ms / 1000} s`))
        }, ms)
        waiters.add(check)
        check()
      })
    },
  }
}

/**
 * Finds out what the build under test accepts: POSTs one five-variable reading with `values` and looks at
 * the answer; keeps the frame Vigía sent for it, which the references copy.
 */
export async function detectFleet(ctx: Ctx) {
  const server = await startServer('vigia', 2000)
  try {
    await createFleet(server, 1)
    const ws = new WebSocket(server.wsUrl('readings'))
    const got = frames(ws)
    await got.find((m) => m.type === 'connection')
    const startMs = fleetStart()
    const sample = readingAt(LOAD.seed, 1, startMs - 1000, 5)
    const iso = new Date(sample.ms).toISOString()
    const five = await call(server.base, 'POST', '/api/v1/readings', {
      sensor_id: 1,
      values: sample.values,
      timestamp: iso,
    })
    // A stored value may come back as a number or as {value, …}.
    const co2 = five.body?.values?.co2
    const acceptsValues = five.status === 201 && Number(co2?.value ?? co2) === sample.values.co2
    if (ctx.vars === 5 && !acceptsValues)
      throw new Error(
        `--vars 5: this build does not store \`values\` (POST answered ${five.status}: ${JSON.stringify(five.body).slice(0, 200)})`,
      )
    const vars: VariableCount = ctx.vars ?? (acceptsValues ? 5 : 2)
    let frame = acceptsValues
      ? await got.find((m) => m.entity_type === 'reading' && m.entity_id === five.body.id)
      : undefined
    if (vars === 2) {
      const two = await call(server.base, 'POST', '/api/v1/readings', {
        sensor_id: 1,
        temperatura: sample.values.temperatura,
        humedad: sample.values.humedad,
        timestamp: new Date(sample.ms + 1).toISOString(),
      })
      if (two.status !== 201) throw new Error(`a plain reading answered ${two.status}`)
      frame = await got.find((m) => m.entity_type === 'reading' && m.entity_id === two.body.id)
    }
    ws.close()
    ctx.results.meta.fleet = {
      acceptsValues,
      vars,
      sensors: ctx.plan.sensors,
      seed: LOAD.seed,
      startMs,
      frame,
    }
    ctx.log(
      `fleet: ${ctx.plan.sensors} sensors, ${vars} variables per reading (${acceptsValues ? 'the server stores `values`' : 'the server does not take `values` yet: top-level temperatura/humedad'})`,
    )
  } finally {
    await server.stop()
  }
}

export function template(ctx: Ctx): FrameTemplate {
  const frame = ctx.results.meta.fleet!.frame
  return { frame, dataKeys: Object.keys(frame.data as object) }
}
