// The address a request or socket comes from, for per-address limits (login attempts, WebSockets).

/**
 * The socket peer, or with TRUST_PROXY the last X-Forwarded-For entry: the hop the proxy in front
 * appended, which a client cannot forge (entries before it are whatever the client sent).
 */
export function clientAddress(
  trustProxy: boolean,
  forwardedFor: string | null | undefined,
  peer: string | undefined,
): string {
  if (trustProxy && forwardedFor) {
    const last = forwardedFor.split(',').at(-1)!.trim()
    if (last) return last.slice(0, 64)
  }
  return peer ?? 'unknown'
}
