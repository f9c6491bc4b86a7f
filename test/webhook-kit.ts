// Test kit for webhooks: a real HTTP receiver on a free port whose answers a test controls, that keeps
// every request it got, verifies signatures with the standardwebhooks library, and waits on arrivals.
import { Webhook } from 'standardwebhooks'
import type { TestServer } from './helpers'
import { adminToken, bearer } from './auth-kit'

export interface Received {
  id: string
  timestamp: string
  signature: string
  userAgent: string | null
  body: string
  path: string
  /** The status the receiver answered. */
  answered: number
  at: number
}

type Answer = (req: Request, received: Received[]) => number | Response | Promise<number | Response>

/**
 * A receiver: `answer` decides the status of each request (200 by default), `received` keeps every
 * request in arrival order, `until(n)` waits for n of them.
 */
export function startReceiver(answer: Answer = () => 200, port = 0) {
  const received: Received[] = []
  const waiters: { count: number; pred: (r: Received) => boolean; resolve: () => void }[] = []
  let current = answer
  const check = () => {
    for (const w of [...waiters])
      if (received.filter(w.pred).length >= w.count) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve()
      }
  }
  const server = Bun.serve({
    port,
    hostname: '127.0.0.1',
    async fetch(req) {
      const body = await req.text()
      const entry: Received = {
        id: req.headers.get('webhook-id') ?? '',
        timestamp: req.headers.get('webhook-timestamp') ?? '',
        signature: req.headers.get('webhook-signature') ?? '',
        userAgent: req.headers.get('user-agent'),
        body,
        path: new URL(req.url).pathname,
        answered: 0,
        at: Date.now(),
      }
      const out = await current(req, received)
      const res =
        typeof out === 'number' ? new Response(out < 300 ? 'ok' : 'nope', { status: out }) : out
      entry.answered = res.status
      received.push(entry)
      check()
      return res
    },
  })
  return {
    url: `http://127.0.0.1:${server.port}`,
    port: server.port!,
    received,
    /** Successful (2xx-answered) requests only. */
    delivered: () => received.filter((r) => r.answered >= 200 && r.answered < 300),
    setAnswer(next: Answer) {
      current = next
    },
    /** Resolves once `count` requests matching `pred` arrived. */
    until(count: number, pred: (r: Received) => boolean = () => true, timeout = 15_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `receiver: ${received.filter(pred).length}/${count} requests within ${timeout} ms (got ${received.length}: ${received
                  .map((r) => `${r.answered} ${r.body.slice(0, 80)}`)
                  .slice(-5)
                  .join(' | ')})`,
              ),
            ),
          timeout,
        )
        waiters.push({ count, pred, resolve: () => (clearTimeout(timer), resolve()) })
        check()
      })
    },
    stop: () => server.stop(true),
  }
}

export type Receiver = ReturnType<typeof startReceiver>

/** Verifies a received request with the Standard Webhooks library; returns the parsed body. */
export function verify(secret: string, r: Received) {
  return new Webhook(secret).verify(r.body, {
    'webhook-id': r.id,
    'webhook-timestamp': r.timestamp,
    'webhook-signature': r.signature,
  }) as Record<string, any>
}

/** Creates a webhook as admin; returns its answer (with id and secret). */
export async function createWebhook(
  server: TestServer,
  body: Record<string, unknown>,
  token?: string,
) {
  const res = await server.api(
    'POST',
    '/api/v1/webhooks',
    body,
    bearer(token ?? (await adminToken(server))),
  )
  if (res.status !== 201)
    throw new Error(`webhook not created: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body as { id: number; secret: string } & Record<string, any>
}
