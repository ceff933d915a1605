/**
 * Smooth weighted round robin, exactly as nginx (ngx_http_upstream_get_peer in
 * ngx_http_upstream_round_robin.c). Every pick adds each candidate's effective weight to its
 * current weight, chooses the largest current weight (the first one on ties), and subtracts
 * the total from the chosen one. Weights 5,1,1 give a a b a c a a — the heavy server's turns
 * are spread out instead of bunched (a a a a a b c) — and equal weights give plain rotation.
 */
import type { Peer } from './peer.js';
import { takePeer, unavailable } from './peer.js';

/** The next peer among `peers` not yet tried for this request, or undefined when none can be used. */
export function pickWeighted(peers: readonly Peer[], tried: ReadonlySet<Peer>, now: number): Peer | undefined {
  let best: Peer | undefined;
  let total = 0;
  for (const p of peers) {
    if (tried.has(p) || unavailable(p, now)) continue;
    p.currentWeight += p.effectiveWeight;
    total += p.effectiveWeight;
    // A weight lowered by failures recovers one step per round (nginx).
    if (p.effectiveWeight < p.weight) p.effectiveWeight++;
    if (best === undefined || p.currentWeight > best.currentWeight) best = p;
  }
  if (best === undefined) return undefined;
  best.currentWeight -= total;
  return takePeer(best, now);
}
