/**
 * IPv4 fragment reassembly (RFC 791 section 3.2, "An Example Reassembly Procedure";
 * RFC 815 describes the same idea as a list of holes).
 *
 * Each datagram being rebuilt keeps its fragments in a list sorted by offset, with no two
 * fragments overlapping. The datagram is complete when the last fragment (MF = 0) has told
 * us the total length and the bytes held add up to it: since nothing overlaps and nothing
 * lies beyond the end, that means there are no holes left.
 *
 * Policy for hostile or broken input (all counted in `stats`):
 *  - Exact duplicates (same offset and length) are ignored; the first copy is kept.
 *  - Any other overlap drops the WHOLE datagram, in the spirit of RFC 5722 (written for
 *    IPv6; Linux applies the same rule to IPv4). Overlaps are how fragmentation attacks
 *    smuggle one set of bytes past a filter and deliver another, and no correct sender
 *    produces them.
 *  - A non-last fragment whose length is not a multiple of 8, or an empty fragment, is
 *    dropped on its own (offsets count 8-byte units, RFC 791).
 *  - A fragment that would make the datagram longer than 65535 bytes (or
 *    `maxDatagramBytes`) drops the datagram ("ping of death").
 *  - Fragments that disagree about where the datagram ends drop the datagram.
 *  - Memory: every stored fragment is charged its length plus FRAGMENT_OVERHEAD bytes
 *    (so a flood of tiny fragments is not free). When a new fragment would push the total
 *    over `maxTotalBytes`, or a new datagram would exceed `maxDatagrams`, the OLDEST
 *    datagrams are evicted first (counted 'dropped-memory').
 *  - Timeout: a datagram that is not complete `timeoutMs` after its first fragment arrived
 *    is dropped (RFC 1122 section 3.3.2 asks for a fixed timeout of 60 to 120 s; Linux
 *    uses 30 s). Time comes only from `now`.
 */
import type { Ipv4Addr } from './addr.js';
import type { Ipv4Header } from './ipv4.js';
import { FreshMap } from '../runtime/fresh-map.js';

/** Bytes charged per stored fragment on top of its data: a rough cost of its bookkeeping. */
export const FRAGMENT_OVERHEAD = 64;
const MAX_IP_DATAGRAM = 65535;

export interface ReassemblerOptions {
  /** Drop a datagram this long after its first fragment arrived. Default 30000. */
  timeoutMs?: number;
  /** Largest datagram (header + data) we rebuild. Default and maximum 65535. */
  maxDatagramBytes?: number;
  /** Bound on bytes held across all datagrams (data + FRAGMENT_OVERHEAD each). Default 4 MiB. */
  maxTotalBytes?: number;
  /** Bound on datagrams being rebuilt at once. Default 256. */
  maxDatagrams?: number;
}

/** Called for a timed-out datagram whose first fragment had arrived (RFC 792 Time Exceeded). */
export type ReassemblyTimeoutHandler = (firstHeader: Ipv4Header, firstBytes: Uint8Array) => void;

interface Fragment {
  offset: number;
  data: Uint8Array;
}

interface Datagram {
  key: string;
  /** Sorted by offset, non-overlapping. */
  fragments: Fragment[];
  /** Data bytes held. */
  received: number;
  /** Bytes charged against maxTotalBytes. */
  charged: number;
  /** Length of the reassembled data, known once the MF = 0 fragment arrived; else -1. */
  dataLength: number;
  /** Largest fragment end seen so far. */
  maxEnd: number;
  deadline: number;
  /** Header of the offset-0 fragment, kept to quote it in an ICMP Time Exceeded. */
  firstHeader: Ipv4Header | undefined;
}

export class Reassembler {
  private readonly timeoutMs: number;
  private readonly maxDatagramBytes: number;
  private readonly maxTotalBytes: number;
  private readonly maxDatagrams: number;
  /** Iteration order is insertion order (a FreshMap's copies keep it), and every datagram gets
   *  the same timeout, so the first entry is always both the oldest and the next to expire. */
  private readonly datagrams = new FreshMap<string, Datagram>();
  private total = 0;

  readonly stats: Record<string, number> = {
    fragments: 0,
    reassembled: 0,
    duplicates: 0,
    overlaps: 0,
    inconsistent: 0,
    'bad-length': 0,
    timeouts: 0,
    'dropped-memory': 0,
    'dropped-too-big': 0,
  };

  constructor(opts: ReassemblerOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.maxDatagramBytes = Math.min(opts.maxDatagramBytes ?? MAX_IP_DATAGRAM, MAX_IP_DATAGRAM);
    this.maxTotalBytes = opts.maxTotalBytes ?? 4 * 1024 * 1024;
    this.maxDatagrams = Math.max(1, opts.maxDatagrams ?? 256);
  }

  /** Bytes currently held (data plus per-fragment overhead). Never exceeds maxTotalBytes. */
  get bufferedBytes(): number {
    return this.total;
  }

  /** Datagrams currently being rebuilt. */
  get pending(): number {
    return this.datagrams.size;
  }

  /**
   * Add one fragment. `payload` is copied, so the caller may reuse its buffer.
   * Returns the complete reassembled data (a new buffer) when this fragment completes a
   * datagram, else undefined.
   */
  add(header: Ipv4Header, payload: Uint8Array, now: number): Uint8Array | undefined {
    if (!header.mf && header.fragmentOffset === 0) return payload.slice(); // not a fragment
    this.stats.fragments!++;
    const offset = header.fragmentOffset;
    const len = payload.length;
    const end = offset + len;
    // RFC 791: every fragment but the last carries a multiple of 8 data bytes.
    if (len === 0 || (header.mf && (len & 7) !== 0)) {
      this.stats['bad-length']!++;
      return undefined;
    }
    const key = fragmentKey(header.src, header.dst, header.protocol, header.id);
    let dg = this.datagrams.get(key);
    if (header.ihl + end > this.maxDatagramBytes) {
      this.stats['dropped-too-big']!++;
      if (dg) this.remove(dg);
      return undefined;
    }
    if (!dg) {
      while (this.datagrams.size >= this.maxDatagrams) this.evictOldest();
      dg = {
        key,
        fragments: [],
        received: 0,
        charged: 0,
        dataLength: -1,
        maxEnd: 0,
        deadline: now + this.timeoutMs,
        firstHeader: undefined,
      };
      this.datagrams.set(key, dg);
    }

    // Does this fragment agree with what we know about where the datagram ends?
    if (!header.mf) {
      if ((dg.dataLength >= 0 && end !== dg.dataLength) || end < dg.maxEnd) return this.drop(dg, 'inconsistent');
    } else if (dg.dataLength >= 0 && end > dg.dataLength) {
      return this.drop(dg, 'inconsistent');
    }

    // Find where it goes: index of the first fragment starting at or after `offset`.
    const frags = dg.fragments;
    const i = lowerBound(frags, offset);
    const next = frags[i];
    if (next && next.offset === offset && next.data.length === len) {
      this.stats.duplicates!++; // keep the first copy
      return undefined;
    }
    const prev = frags[i - 1];
    if ((prev && prev.offset + prev.data.length > offset) || (next && next.offset < end)) {
      return this.drop(dg, 'overlaps');
    }

    // Make room, oldest datagrams first; if even that is not enough, give up on this one.
    const charge = len + FRAGMENT_OVERHEAD;
    while (this.total + charge > this.maxTotalBytes && this.datagrams.size > 1) {
      const oldest = this.datagrams.values().next().value!;
      this.evict(oldest === dg ? this.secondOldest()! : oldest);
    }
    if (this.total + charge > this.maxTotalBytes) return this.drop(dg, 'dropped-memory');

    frags.splice(i, 0, { offset, data: payload.slice() });
    dg.received += len;
    dg.charged += charge;
    this.total += charge;
    if (end > dg.maxEnd) dg.maxEnd = end;
    if (!header.mf) dg.dataLength = end;
    if (offset === 0) dg.firstHeader = header;

    if (dg.dataLength < 0 || dg.received !== dg.dataLength) return undefined;
    // Complete: no overlaps, nothing beyond the end, and the sizes add up, so no holes.
    const out = new Uint8Array(dg.dataLength);
    for (const f of frags) out.set(f.data, f.offset);
    this.remove(dg);
    this.stats.reassembled!++;
    return out;
  }

  /**
   * Drop every datagram whose timeout has passed. `onTimeout` is told about those whose
   * first fragment had arrived, so the caller can send ICMP Time Exceeded (code 1).
   */
  poll(now: number, onTimeout?: ReassemblyTimeoutHandler): void {
    for (const dg of this.datagrams.values()) {
      if (dg.deadline > now) break; // insertion order = deadline order
      this.remove(dg);
      this.stats.timeouts!++;
      const first = dg.fragments[0];
      if (onTimeout && dg.firstHeader && first && first.offset === 0) {
        onTimeout(dg.firstHeader, first.data.subarray(0, 8));
      }
    }
  }

  /** When poll next has work to do; Infinity when nothing is pending. */
  nextDeadline(): number {
    const first = this.datagrams.values().next();
    return first.done ? Infinity : first.value.deadline;
  }

  private drop(dg: Datagram, reason: string): undefined {
    this.stats[reason] = (this.stats[reason] ?? 0) + 1;
    this.remove(dg);
    return undefined;
  }

  private evictOldest(): void {
    const oldest = this.datagrams.values().next();
    if (!oldest.done) this.evict(oldest.value);
  }

  private secondOldest(): Datagram | undefined {
    const it = this.datagrams.values();
    it.next();
    const second = it.next();
    return second.done ? undefined : second.value;
  }

  private evict(dg: Datagram): void {
    this.stats['dropped-memory']!++;
    this.remove(dg);
  }

  private remove(dg: Datagram): void {
    this.datagrams.delete(dg.key);
    this.total -= dg.charged;
  }
}

/** The datagram a fragment belongs to: (source, destination, protocol, identification), RFC 791. */
function fragmentKey(src: Ipv4Addr, dst: Ipv4Addr, protocol: number, id: number): string {
  return `${src}:${dst}:${protocol}:${id}`;
}

/** Index of the first fragment whose offset is >= `offset` (binary search). */
function lowerBound(frags: Fragment[], offset: number): number {
  let lo = 0;
  let hi = frags.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (frags[mid]!.offset < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
