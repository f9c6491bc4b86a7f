// Roles and channel permissions: what each role may do, and which channels a user's patterns allow.
export const ROLES = ['admin', 'operator', 'viewer'] as const
export type Role = (typeof ROLES)[number]

/** What a request needs: any valid token, a role that may change data, or an admin. */
export type Need = 'token' | 'write' | 'admin'

export function allows(role: Role, need: Need): boolean {
  if (need === 'admin') return role === 'admin'
  if (need === 'write') return role === 'admin' || role === 'operator'
  return true
}

/** `*`, a channel name (`general`, `sensors:5`) or every sub-channel of one (`sensors:*`). */
export const CHANNEL_PATTERN =
  '^(\\*|general|sensors|readings|locations|anomalies|predictions|(sensors|readings|locations|anomalies|predictions):(\\*|[1-9][0-9]{0,14}))$'

/** `sensors:*` allows `sensors:5` but not `sensors` itself; only `*` allows everything. */
export function channelMatcher(patterns: readonly string[]): (channel: string) => boolean {
  if (patterns.includes('*')) return () => true
  const exact = new Set(patterns.filter((p) => !p.endsWith(':*')))
  const prefixes = patterns.filter((p) => p.endsWith(':*')).map((p) => p.slice(0, -1))
  return (channel) => exact.has(channel) || prefixes.some((prefix) => channel.startsWith(prefix))
}
