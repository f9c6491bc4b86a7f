// Where a webhook may connect: every address a URL's host resolves to is classified (loopback, private,
// reserved, public) and checked against WEBHOOK_ALLOW, and this server's own port on a local address is
// never allowed. Addresses are checked after resolution, so no spelling of a host gets around it.
import { lookup } from 'node:dns/promises'
import { BlockList, isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import type { WebhookAllow } from '../../config'

export type AddressClass = 'loopback' | 'private' | 'reserved' | 'public'

const list = (ranges: [string, number][]) => {
  const blocks = new BlockList()
  for (const [address, prefix] of ranges)
    blocks.addSubnet(address, prefix, isIP(address) === 6 ? 'ipv6' : 'ipv4')
  return blocks
}

/** 0.0.0.0/8 and :: reach this host on Linux, so they count as loopback. */
const LOOPBACK = list([
  ['127.0.0.0', 8],
  ['0.0.0.0', 8],
  ['::1', 128],
  ['::', 128],
])
const PRIVATE = list([
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16],
  ['fc00::', 7],
  ['fe80::', 10],
])
/** Never a webhook receiver: multicast, broadcast and reserved ranges (allowed only by an explicit range). */
const RESERVED = list([
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
  ['ff00::', 8],
  ['2001:db8::', 32],
])

const family = (address: string) => (isIP(address) === 6 ? 'ipv6' : 'ipv4')

/** IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) are classified by the IPv4 address they carry. */
export function classify(address: string): AddressClass {
  const type = family(address)
  if (LOOPBACK.check(address, type)) return 'loopback'
  if (PRIVATE.check(address, type)) return 'private'
  if (RESERVED.check(address, type)) return 'reserved'
  return 'public'
}

export class BlockedAddressError extends Error {}

let localCache: { at: number; addresses: Set<string> } | undefined

/** This machine's interface addresses (read at most once a minute). */
function localAddresses(): Set<string> {
  if (localCache && Date.now() - localCache.at < 60_000) return localCache.addresses
  const addresses = new Set<string>()
  for (const entries of Object.values(networkInterfaces()))
    for (const entry of entries ?? []) addresses.add(entry.address.toLowerCase())
  localCache = { at: Date.now(), addresses }
  return addresses
}

export function createAddressPolicy(allow: WebhookAllow, ownPort: () => number | undefined) {
  const ranges = new BlockList()
  for (const [address, prefix, type] of allow.ranges) ranges.addSubnet(address, prefix, type)
  const classes = new Set<AddressClass>(allow.classes)

  /** Why this address may not be used on this port, or undefined when it may. */
  const refusal = (address: string, port: number): string | undefined => {
    const kind = classify(address)
    const local = kind === 'loopback' || localAddresses().has(address.toLowerCase())
    if (local && port === ownPort())
      return `${address} port ${port} is this server itself; webhooks cannot call its own API`
    if (classes.has(kind) || ranges.check(address, family(address))) return undefined
    return `${address} is a ${kind} address, which WEBHOOK_ALLOW (${allow.text}) does not allow`
  }

  return {
    refusal,
    /**
     * The address to connect to for this URL: the host's addresses are resolved and every one must
     * be allowed (a host that also resolves to a refused address is refused whole).
     */
    async resolve(url: URL): Promise<string> {
      // "localhost." is "localhost" written as a fully qualified name.
      const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '')
      const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
      const addresses = isIP(host)
        ? [host]
        : (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address)
      if (addresses.length === 0) throw new BlockedAddressError(`${host} has no address`)
      for (const address of addresses) {
        const reason = refusal(address, port)
        if (reason) throw new BlockedAddressError(`${url.host} resolves to ${reason}`)
      }
      return addresses[0]!
    },
  }
}

export type AddressPolicy = ReturnType<typeof createAddressPolicy>
