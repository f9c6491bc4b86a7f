// The fleet page under load (issue 13): Chromium opens /fleet.html on a fleet of sensors (1,000 in the full
// and quick runs) spread over located places, then readings arrive at a fixed 200/s for a bounded time.
// Each reading is timed from its POST to the moment the page's table shows its temperatura (a
// MutationObserver in the page), and, as the reference in the same page and run, to the moment a bare
// WebSocket on `readings` in that page has the event (transport only, no rendering). The page falls behind
// when readings are never shown, or when its own share of the lag (table minus socket) grows from the
// first fifth of the run to the last.
import { existsSync } from 'node:fs'
import { chromium } from 'playwright-core'
import type { Ctx } from '../lib/context'
import { fleetBody, Lane, type VariableCount } from '../lib/fleet'
import { newHistogram, summarize, type Latency } from '../lib/histogram'
import type { FleetPageRun } from '../lib/results'
import { call, startServer, type RunningServer } from '../lib/servers'

const CHROMIUM = '/usr/bin/chromium'
const RATE = 200
const PLACES = 20
const SECONDS = { full: 30, quick: 10, tiny: 2 } as const
const SENSORS = { full: 1000, quick: 1000, tiny: 20 } as const

/** `count` sensors spread over PLACES located places (16 requests at a time). */
async function createFleetWithPlaces(server: RunningServer, count: number) {
  const places: number[] = []
  for (let i = 0; i < PLACES; i++) {
    const r = await call(server.base, 'POST', '/api/v1/locations', {
      nombre: `Sede ${i + 1}`,
      latitud: 36 + (i % 5) * 1.5,
      longitud: -8 + Math.floor(i / 5) * 2.5,
    })
    if (r.status !== 201) throw new Error(`creating a location answered ${r.status}`)
    places.push(r.body.id)
  }
  const ids: number[] = []
  let next = 0
  const lane = async () => {
    while (next < count) {
      const i = next++
      const r = await call(server.base, 'POST', '/api/v1/sensors', {
        tipo: 'ambiente',
        modelo: 'BME680',
        nombre: `Sensor ${i + 1}`,
        location_id: places[i % PLACES],
      })
      if (r.status !== 201) throw new Error(`creating a sensor answered ${r.status}`)
      ids.push(r.body.id)
    }
  }
  await Promise.all(Array.from({ length: 16 }, lane))
  return ids.sort((a, b) => a - b)
}

/** Runs in the page: records when the table shows each temperatura, and when a bare socket has each reading. */
function instrument(wsUrl: string) {
  const w = window as unknown as {
    shown: [number, string, number][]
    heard: [number, number, number][]
  }
  w.shown = []
  w.heard = []
  const at = () => performance.timeOrigin + performance.now()
  new MutationObserver((records) => {
    const t = at()
    for (const r of records) {
      const b = r.target instanceof Element ? r.target : r.target.parentElement
      const chip = b?.closest('a.value[data-variable="temperatura"]')
      if (!chip || b?.tagName !== 'B') continue
      const id = Number(chip.closest('tr')?.getAttribute('data-sensor-id'))
      w.shown.push([id, b.textContent ?? '', t])
    }
  }).observe(document.getElementById('fleet')!, {
    subtree: true,
    childList: true,
    characterData: true,
  })
  return new Promise<void>((resolve) => {
    const ws = new WebSocket(wsUrl)
    ws.onmessage = (e) => {
      const t = at()
      const m = JSON.parse(String(e.data))
      if (m.type === 'connection') resolve()
      if (m.entity_type === 'reading' && m.event_type === 'created')
        w.heard.push([m.data.sensor_id, m.data.values.temperatura, t])
    }
  })
}

const summary = (lags: number[]): Latency => {
  const h = newHistogram()
  for (const lag of lags) h.recordValue(Math.max(1, Math.round(lag * 1000)))
  const s = summarize(h)
  h.destroy()
  return s
}
interface Sent {
  id: number
  text: string
  t: number
  timed: boolean
}

/**
 * When each sent reading was caught up with: each text the page showed resolves the newest reading of
 * that sensor with that text sent before it, and every earlier unresolved reading of the sensor.
 */
function caughtUp(sent: Sent[], shown: [number, string, number][]) {
  const bySensor = new Map<number, Sent[]>()
  for (const s of sent) {
    let list = bySensor.get(s.id)
    if (!list) bySensor.set(s.id, (list = []))
    list.push(s)
  }
  const resolvedUpTo = new Map<number, number>()
  const at = new Map<Sent, number>()
  for (const [id, text, t] of shown) {
    const list = bySensor.get(id)
    if (!list) continue
    let j = -1
    for (let k = list.length - 1; k >= 0; k--)
      if (list[k]!.t <= t && list[k]!.text === text) {
        j = k
        break
      }
    for (let k = resolvedUpTo.get(id) ?? 0; k <= j; k++) at.set(list[k]!, t)
    if (j >= 0) resolvedUpTo.set(id, Math.max(resolvedUpTo.get(id) ?? 0, j + 1))
  }
  return at
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN

export async function fleetPagePhase(ctx: Ctx): Promise<FleetPageRun | undefined> {
  if (!existsSync(CHROMIUM)) return void ctx.skip('fleet page', `no Chromium at ${CHROMIUM}`)
  const sensors = SENSORS[ctx.mode]
  const seconds = SECONDS[ctx.mode]
  const server = await startServer('vigia', 2000, { profileDir: ctx.profile })
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
  try {
    const ids = await createFleetWithPlaces(server, sensors)
    const vars: VariableCount = 5
    const lane = new Lane(ids, 17, Date.now() - 86_400_000, vars)
    // One reading per sensor first, so every row has its values before the clock starts.
    const first = lane.take(ids.length).map((r) => fleetBody(r, vars))
    const r = await call(server.base, 'POST', '/api/v1/readings/batch', first)
    if (r.status !== 201) throw new Error(`the first batch answered ${r.status}`)

    const page = await (
      await browser.newContext({ viewport: { width: 1400, height: 900 } })
    ).newPage()
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    const loadStart = performance.now()
    await page.goto(`${server.base}/fleet.html`)
    await page.waitForSelector('#status[data-state="open"]')
    await page.waitForSelector(`#summary[data-online="${sensors}"]`, { timeout: 60_000 })
    await page.waitForSelector(`#map[data-points="${PLACES}"]`)
    const loadMs = performance.now() - loadStart
    await page.evaluate(instrument, server.wsUrl('readings'))
    ctx.log(
      `  fleet page: ${sensors} sensors shown in ${loadMs.toFixed(0)} ms; ${RATE} readings/s for ${seconds} s`,
    )

    // Paced sends, each timed from the moment its POST leaves; a reading equal to the sensor's previous
    // temperatura changes no text, so it is sent but not timed.
    const sent: Sent[] = []
    // The first batch's values are on screen already: a first live reading equal to one changes nothing.
    const previous = new Map<number, string>(
      first.map((b) => [b.sensor_id, String(b.values?.temperatura)]),
    )
    const total = RATE * seconds
    const start = performance.now()
    const pending: Promise<unknown>[] = []
    let errorsHttp = 0
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / RATE
      const wait = due - performance.now()
      if (wait > 1) await Bun.sleep(wait)
      const reading = lane.next()
      const text = String(reading.values.temperatura)
      const timed = previous.get(reading.sensor_id) !== text
      previous.set(reading.sensor_id, text)
      sent.push({
        id: reading.sensor_id,
        text,
        t: performance.timeOrigin + performance.now(),
        timed,
      })
      pending.push(
        call(server.base, 'POST', '/api/v1/readings', fleetBody(reading, vars)).then((res) => {
          if (res.status !== 201) errorsHttp += 1
        }),
      )
    }
    const sendSeconds = (performance.now() - start) / 1000
    await Promise.all(pending)
    // Wait for the page to catch up (bounded): every sensor's last timed text on the page, or 10 s. Not
    // only the last reading sent: POSTs in flight together may commit, and reach the page, in another order.
    const finals = new Map<number, string>()
    for (const s of sent) if (s.timed) finals.set(s.id, s.text)
    await page
      .waitForFunction(
        (pairs) => {
          const onPage = new Map<number, string>()
          for (const [id, text] of (window as unknown as { shown: [number, string, number][] })
            .shown)
            onPage.set(id, text)
          return pairs.every(([id, text]) => onPage.get(id) === text)
        },
        [...finals],
        { timeout: 10_000 },
      )
      .catch(() => undefined)
    const drainMs = performance.now() - start - sendSeconds * 1000
    const { shown, heard } = await page.evaluate(() => {
      const w = window as unknown as {
        shown: [number, string, number][]
        heard: [number, number, number][]
      }
      return { shown: w.shown, heard: w.heard }
    })

    // A reading is caught up when the page shows it or a newer reading of its sensor (the page holds
    // the latest, and draws once per frame, so a reading overtaken within a frame is never drawn itself).
    const shownAt = caughtUp(sent, shown)
    const heardByKey = new Map<string, number>()
    for (const [id, value, t] of heard) heardByKey.set(`${id}:${value}`, t)
    const lags: number[] = []
    const transport: number[] = []
    let missed = 0
    const timed = sent.filter((s) => s.timed)
    const lagAt = new Array<number>(timed.length)
    /** The page's own share: the table shows it this long after the bare socket had it. */
    const ownAt = new Array<number>(timed.length)
    timed.forEach((s, i) => {
      const ws = heardByKey.get(`${s.id}:${s.text}`)
      if (ws !== undefined && ws >= s.t) transport.push(ws - s.t)
      const dom = shownAt.get(s)
      if (dom === undefined) return void (missed += 1)
      lags.push((lagAt[i] = dom - s.t))
      if (ws !== undefined) ownAt[i] = dom - ws
    })
    const fifth = Math.max(1, Math.floor(timed.length / 5))
    const early = median(lagAt.slice(0, fifth).filter((x) => x !== undefined))
    const late = median(lagAt.slice(-fifth).filter((x) => x !== undefined))
    const ownEarly = median(ownAt.slice(0, fifth).filter((x) => x !== undefined))
    const ownLate = median(ownAt.slice(-fifth).filter((x) => x !== undefined))
    const run: FleetPageRun = {
      sensors,
      places: PLACES,
      rate: RATE,
      seconds,
      sent: sent.length,
      sentPerSecond: sent.length / sendSeconds,
      httpErrors: errorsHttp,
      timed: timed.length,
      shown: lags.length,
      missed,
      loadMs,
      drainMs: Math.max(0, drainMs),
      dom: summary(lags),
      transport: summary(transport),
      earlyP50: early,
      lateP50: late,
      ownEarlyP50: ownEarly,
      ownLateP50: ownLate,
      behind: missed > 0 || ownLate > 2 * ownEarly + 100,
      pageErrors: errors.slice(0, 5),
    }
    return run
  } finally {
    await browser.close()
    await server.stop()
  }
}
