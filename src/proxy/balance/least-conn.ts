/**
 * least_conn as nginx (ngx_http_upstream_least_conn_module.c): the peer with the fewest
 * requests in progress relative to its weight (conns/weight, compared by cross-multiplying);
 * when several tie, smooth weighted round robin among the tied ones, starting from the first.
 */
import type { Peer } from './peer.js';
import { takePeer, unavailable } from './peer.js';

export function pickLeastConn(peers: readonly Peer[], tried: ReadonlySet<Peer>, now: number): Peer | undefined {
  let best: Peer | undefined;
  let first = 0;
  let many = false;
  for (let i = 0; i < peers.length; i++) {
    const p = peers[i]!;
    if (tried.has(p) || unavailable(p, now)) continue;
    if (best === undefined || p.conns * best.weight < best.conns * p.weight) {
      best = p;
      first = i;
      many = false;
    } else if (p.conns * best.weight === best.conns * p.weight) {
      many = true;
    }
  }
  if (best === undefined) return undefined;
  if (many) {
    const least = best;
    let total = 0;
    for (let i = first; i < peers.length; i++) {
      const p = peers[i]!;
      if (tried.has(p) || unavailable(p, now)) continue;
      if (p.conns * least.weight !== least.conns * p.weight) continue;
      p.currentWeight += p.effectiveWeight;
      total += p.effectiveWeight;
      if (p.effectiveWeight < p.weight) p.effectiveWeight++;
      if (p.currentWeight > best.currentWeight) best = p;
    }
    best.currentWeight -= total;
  }
  return takePeer(best, now);
}
