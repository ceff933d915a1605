/**
 * `hash KEY consistent` as nginx (ngx_http_upstream_hash_module.c, ketama-style): each server
 * puts 160 points per unit of weight on a ring of 32-bit hashes. Point j of a server is
 * crc32(host "\0" port prev), where prev is point j-1 as 4 little-endian bytes (0 for the
 * first), and host/port come from the server's name as written. A key goes to the first point
 * at or after crc32(key), wrapping around. Adding or removing one of N servers moves only the
 * keys whose nearest point changed: about 1/N of them.
 *
 * When the server found is down or already tried, the walk moves on to the next point; after
 * every point was visited, no server is left.
 */
import { crc32, crc32Update } from './crc32.js';
import type { Peer } from './peer.js';
import { takePeer, unavailable } from './peer.js';

export const POINTS_PER_WEIGHT = 160;

export interface Ring {
  /** Point hashes, ascending, without duplicates. */
  hashes: Uint32Array;
  /** The server name each point belongs to. */
  names: string[];
}

/** Split "host:port" as nginx does: the port is the digits after the last colon, if any. */
function hostAndPort(name: string): [host: string, port: string] {
  const m = /^(.*):(\d*)$/.exec(name);
  return m ? [m[1]!, m[2]!] : [name, ''];
}

export function buildRing(peers: readonly Pick<Peer, 'name' | 'weight'>[]): Ring {
  const points: Array<{ hash: number; name: string }> = [];
  const enc = new TextEncoder();
  const prev = new Uint8Array(4);
  const prevView = new DataView(prev.buffer);
  for (const p of peers) {
    const [host, port] = hostAndPort(p.name);
    let base = crc32Update(0xffffffff, enc.encode(host));
    base = crc32Update(base, new Uint8Array([0]));
    base = crc32Update(base, enc.encode(port));
    prevView.setUint32(0, 0, true);
    for (let j = 0; j < p.weight * POINTS_PER_WEIGHT; j++) {
      const hash = (crc32Update(base, prev) ^ 0xffffffff) >>> 0;
      points.push({ hash, name: p.name });
      prevView.setUint32(0, hash, true);
    }
  }
  // Stable sort keeps nginx's choice for equal hashes undetermined-but-fixed: the first survives.
  points.sort((a, b) => a.hash - b.hash);
  const hashes: number[] = [];
  const names: string[] = [];
  for (const pt of points) {
    if (hashes.length > 0 && hashes[hashes.length - 1] === pt.hash) continue;
    hashes.push(pt.hash);
    names.push(pt.name);
  }
  return { hashes: Uint32Array.from(hashes), names };
}

/** Index of the first point with hash >= `hash` (may equal the point count: the walk wraps). */
export function findPoint(ring: Ring, hash: number): number {
  let i = 0;
  let j = ring.hashes.length;
  while (i < j) {
    const k = (i + j) >>> 1;
    if (hash > ring.hashes[k]!) i = k + 1;
    else if (hash < ring.hashes[k]!) j = k;
    else return k;
  }
  return i;
}

/** Per-request state: the ring position and the points visited (nginx's hp->hash, hp->tries). */
export interface ChashState {
  point: number;
  tries: number;
}

export function startChash(ring: Ring, key: string): ChashState {
  return { point: findPoint(ring, crc32(new TextEncoder().encode(key))), tries: 0 };
}

export function pickChash(ring: Ring, peers: readonly Peer[], state: ChashState, tried: ReadonlySet<Peer>, now: number): Peer | undefined {
  const n = ring.hashes.length;
  if (n === 0) return undefined;
  for (;;) {
    const name = ring.names[state.point % n]!;
    // Several peers may share a name (nginx: a host that resolved to several addresses):
    // smooth weighted round robin among them.
    let best: Peer | undefined;
    let total = 0;
    for (const p of peers) {
      if (p.name !== name || tried.has(p) || unavailable(p, now)) continue;
      p.currentWeight += p.effectiveWeight;
      total += p.effectiveWeight;
      if (p.effectiveWeight < p.weight) p.effectiveWeight++;
      if (best === undefined || p.currentWeight > best.currentWeight) best = p;
    }
    if (best) {
      best.currentWeight -= total;
      return takePeer(best, now);
    }
    state.point++;
    if (++state.tries >= n) return undefined;
  }
}
