// One signed POST to a webhook endpoint (Standard Webhooks headers, signed by the standardwebhooks
// library), connecting only to addresses the address policy allowed, with a timeout, and following a
// redirect only to the same origin with 307/308 (which keep the POST and its body).
import { Webhook } from 'standardwebhooks'
import { VERSION } from '../../lib/version'
import { BlockedAddressError, type AddressPolicy } from './address'

export interface SendResult {
  ok: boolean
  /** HTTP status of the final answer, when one came. */
  status?: number
  /** Time to the answer's headers (or to the failure). */
  ms: number
  error?: string
}

export type Sender = ReturnType<typeof createSender>

/** What deliveries send as User-Agent; requests carrying it are refused by this server (no loops). */
export const USER_AGENT = `Vigia-Webhooks/${VERSION}`
const MAX_REDIRECTS = 3
const ERROR_BODY_CHARS = 200

/** The first bytes of a body (for the log), reading no more than that; the rest is dropped. */
async function snippet(res: Response): Promise<string> {
  if (!res.body) return ''
  // A small body of known length is read whole (cheaper than a stream reader, and keeps the connection).
  const length = Number(res.headers.get('content-length') ?? NaN)
  if (length <= 65_536) return clip(await res.text())
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    while (size < 4096) {
      const { value, done } = await reader.read()
      if (done) break
      chunks.push(value)
      size += value.byteLength
    }
  } finally {
    reader.cancel().catch(() => undefined)
  }
  return clip(new TextDecoder().decode(Buffer.concat(chunks)))
}

const clip = (text: string) => text.replace(/\s+/g, ' ').trim().slice(0, ERROR_BODY_CHARS)

export function createSender(policy: AddressPolicy, timeoutMs: number) {
  // Keyed by secret: building the signer decodes the key.
  const signers = new Map<string, Webhook>()
  const signer = (secret: string) => {
    let found = signers.get(secret)
    if (!found) {
      if (signers.size > 1000) signers.clear()
      signers.set(secret, (found = new Webhook(secret)))
    }
    return found
  }

  /** `v1,<sig>` per secret, space-separated (several during a rotation's overlap). */
  const sign = (secrets: string[], msgId: string, at: Date, payload: string) =>
    secrets.map((secret) => signer(secret).sign(msgId, at, payload)).join(' ')

  /** `stop` aborts the request early (the server is stopping); the result is then a failure. */
  async function send(
    target: string,
    secrets: string[],
    msgId: string,
    payload: string,
    stop?: AbortSignal,
  ): Promise<SendResult> {
    const started = performance.now()
    const elapsed = () => Math.round(performance.now() - started)
    const at = new Date()
    const headers = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      'webhook-id': msgId,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': sign(secrets, msgId, at, payload),
    }
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = stop ? AbortSignal.any([timeout, stop]) : timeout
    let url = new URL(target)
    try {
      for (let hop = 0; ; hop++) {
        const address = await policy.resolve(url)
        // Connect to the address that was checked, not to whatever the name resolves to next.
        const pinned = new URL(url)
        pinned.hostname = address.includes(':') ? `[${address}]` : address
        const res = await fetch(pinned, {
          method: 'POST',
          headers: { ...headers, host: url.host },
          body: payload,
          redirect: 'manual',
          signal,
          ...(url.protocol === 'https:' ? { tls: { serverName: url.hostname } } : {}),
        })
        const ms = elapsed()
        if (res.status >= 200 && res.status < 300) {
          await snippet(res)
          return { ok: true, status: res.status, ms }
        }
        if (res.status >= 300 && res.status < 400 && res.headers.has('location')) {
          const next = new URL(res.headers.get('location')!, url)
          await snippet(res)
          const refuse = (why: string) => ({
            ok: false,
            status: res.status,
            ms,
            error: `redirect to ${next.origin} not followed: ${why}`,
          })
          if (next.origin !== url.origin)
            return refuse('only redirects to the same scheme, host and port are followed')
          if (res.status !== 307 && res.status !== 308)
            return refuse(
              `a ${res.status} would turn the POST into a GET; only 307 and 308 are followed`,
            )
          if (hop + 1 >= MAX_REDIRECTS) return refuse(`more than ${MAX_REDIRECTS} redirects`)
          url = next
          continue
        }
        const body = await snippet(res)
        return {
          ok: false,
          status: res.status,
          ms,
          error: `HTTP ${res.status}${body ? `: ${body}` : ''}`,
        }
      }
    } catch (error) {
      const ms = elapsed()
      if (error instanceof BlockedAddressError)
        return { ok: false, ms, error: `refused: ${error.message}` }
      if (timeout.aborted) return { ok: false, ms, error: `no answer within ${timeoutMs / 1000} s` }
      if (stop?.aborted) return { ok: false, ms, error: 'not finished: the server was stopping' }
      const code = (error as { code?: string }).code
      return {
        ok: false,
        ms,
        error: `${code ? `${code}: ` : ''}${String((error as Error).message ?? error).slice(0, 200)}`,
      }
    }
  }

  return { send, sign }
}
