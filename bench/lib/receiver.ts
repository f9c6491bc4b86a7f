// A local webhook receiver inside a load-generator process: one path per endpoint, answers 204 at once,
// counts each webhook-id once, checks the Standard Webhooks signature and times event commit → receipt.
import type { Server } from 'bun'
import { createHmac } from 'node:crypto'
import { encode, newHistogram, type Histogram } from './histogram'
import type { ReceiverStats } from './protocol'

let receiver:
  | {
      server: Server<undefined>
      secrets: Buffer[]
      seen: Set<string>[]
      stats: Omit<ReceiverStats, 'hist'>
      hist: Histogram
    }
  | undefined

/** Standard Webhooks: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>"> keyed with the secret's bytes. */
function signed(key: Buffer | undefined, id: string, ts: string, body: string, header: string) {
  if (!key) return true
  const want = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64')
  return header.split(' ').some((s) => s === `v1,${want}`)
}

export function startReceiver(endpoints: number, now: () => number) {
  const blank = (): Omit<ReceiverStats, 'hist'> => ({
    counts: new Array(endpoints).fill(0),
    duplicates: 0,
    badSignature: 0,
    first: 0,
    last: 0,
  })
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      const r = receiver!
      const n = Number(new URL(req.url).pathname.split('/')[2])
      const body = await req.text()
      const t = now()
      const id = req.headers.get('webhook-id') ?? ''
      if (!(n >= 0 && n < r.stats.counts.length)) return new Response(null, { status: 404 })
      if (r.seen[n]!.has(id)) r.stats.duplicates += 1
      else {
        r.seen[n]!.add(id)
        r.stats.counts[n]! += 1
        if (r.stats.first === 0) r.stats.first = t
        r.stats.last = t
        const ts = req.headers.get('webhook-timestamp') ?? ''
        const sig = req.headers.get('webhook-signature') ?? ''
        if (!id || !ts || !signed(r.secrets[n], id, ts, body, sig)) r.stats.badSignature += 1
        let at = NaN
        try {
          at = Date.parse((JSON.parse(body) as { timestamp: string }).timestamp)
        } catch {}
        if (Number.isFinite(at))
          r.hist.recordValue(Math.max(1, Math.round((Date.now() - at) * 1000)))
      }
      return new Response(null, { status: 204 })
    },
  })
  receiver = {
    server,
    secrets: [],
    seen: Array.from({ length: endpoints }, () => new Set()),
    stats: blank(),
    hist: newHistogram(),
  }
  return { url: `http://127.0.0.1:${server.port}` }
}

export function receiverStats(reset: boolean): ReceiverStats {
  const r = receiver!
  const out = { ...r.stats, counts: [...r.stats.counts], hist: encode(r.hist) }
  if (reset) {
    r.stats = {
      counts: r.stats.counts.map(() => 0),
      duplicates: 0,
      badSignature: 0,
      first: 0,
      last: 0,
    }
    r.seen = r.seen.map(() => new Set())
    r.hist.reset()
  }
  return out
}

export function receiverSecrets(secrets: string[]) {
  receiver!.secrets = secrets.map((s) => Buffer.from(s.replace(/^whsec_/, ''), 'base64'))
  return {}
}

export function stopReceiver() {
  receiver?.server.stop(true)
  receiver?.hist.destroy()
  receiver = undefined
  return {}
}
