/**
 * ip_hash as nginx (ngx_http_upstream_ip_hash_module.c): the first three octets of the
 * client's IPv4 address are hashed (h = (h*113 + octet) mod 6271, starting from 89), so every
 * client of one /24 lands on the same server; the hash picks a server by weight. When that
 * server is down or already tried, the hash is stirred again with the same octets (from where
 * it stopped), up to 20 times; after that, plain weighted round robin.
 */
import type { Peer } from './peer.js';
import { takePeer, unavailable } from './peer.js';

export const IP_HASH_INITIAL = 89;
export const IP_HASH_MAX_TRIES = 20;

/** One step of the hash over the /24 of `addr` (a 32-bit IPv4 address). */
export function ipHashStep(hash: number, addr: number): number {
  const octets = [(addr >>> 24) & 0xff, (addr >>> 16) & 0xff, (addr >>> 8) & 0xff];
  for (const o of octets) hash = (hash * 113 + o) % 6271;
  return hash;
}

/** Per-request state: the hash so far and the rehash count (nginx's iphp->hash, iphp->tries). */
export interface IpHashState {
  hash: number;
  tries: number;
}

/**
 * The next peer for the client at `addr`; undefined means "fall back to round robin"
 * (too many rehashes, or fewer than two servers).
 */
export function pickIpHash(peers: readonly Peer[], addr: number, state: IpHashState, tried: ReadonlySet<Peer>, now: number): Peer | undefined {
  if (state.tries > IP_HASH_MAX_TRIES || peers.length < 2) return undefined;
  let totalWeight = 0;
  for (const p of peers) totalWeight += p.weight;
  let hash = state.hash;
  for (;;) {
    hash = ipHashStep(hash, addr);
    let w = hash % totalWeight;
    let i = 0;
    while (w >= peers[i]!.weight) w -= peers[i++]!.weight;
    const p = peers[i]!;
    if (!tried.has(p) && !unavailable(p, now)) {
      state.hash = hash;
      return takePeer(p, now);
    }
    if (++state.tries > IP_HASH_MAX_TRIES) return undefined;
  }
}
