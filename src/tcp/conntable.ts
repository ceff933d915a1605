/**
 * The layer's connections by 4-tuple. Our address is the stack's one address, so a connection is
 * found by (our port, remote address, remote port). Every lookup is O(1) (DESIGN.md: never a
 * linear scan per packet).
 *
 * An open-addressing hash table of the connections themselves: one array of slots, probed
 * linearly from the tuple's hash, compared field by field against each connection's own tuple,
 * so a lookup builds no key (a string key was once the costliest line of the receive path) and
 * no two tuples can be confused. Deleting shifts the entries after the hole back (no tombstones),
 * so the table never needs rebuilding except to grow or shrink.
 *
 * Not a Map: a Map whose entries come and go for as long as the server runs rehashes into a new
 * table every few dozen connections, and V8 links each replaced table to its successor; once one
 * of them is in the old generation, every later table and every connection they held survives
 * the young-generation collections until the next full GC (runtime/linked-set.ts has the whole
 * story). An array replaced on growth holds no link to its successor.
 *
 * The hash is Linux's choice for its established-connection table (inet_ehashfn): Bob Jenkins'
 * hash of the three words with a random secret, so a peer that picks its ports and addresses
 * cannot aim them all at one run of slots.
 */
import type { Ipv4Addr } from '../ip/addr.js';

/** What the table needs of a connection: its tuple (ours and the peer's port and address). */
export interface TupleOwner {
  readonly localPort: number;
  readonly remoteAddr: Ipv4Addr;
  readonly remotePort: number;
}

const MIN_SLOTS = 16;

export class ConnectionTable<C extends TupleOwner> {
  /** Power-of-two many slots, at most half of them full (so every probe meets an empty one soon). */
  private slots: Array<C | undefined> = new Array<C | undefined>(MIN_SLOTS).fill(undefined);
  private mask = MIN_SLOTS - 1;
  #size = 0;

  /** `secret`: any 32-bit number, random outside reproducible simulations. */
  constructor(private readonly secret = 0) {}

  get size(): number {
    return this.#size;
  }

  get(remoteAddr: Ipv4Addr, remotePort: number, localPort: number): C | undefined {
    const slots = this.slots;
    const mask = this.mask;
    for (let i = tupleHash(this.secret, remoteAddr, remotePort, localPort) & mask; ; i = (i + 1) & mask) {
      const c = slots[i];
      if (c === undefined || sameTuple(c, remoteAddr, remotePort, localPort)) return c;
    }
  }

  has(remoteAddr: Ipv4Addr, remotePort: number, localPort: number): boolean {
    return this.get(remoteAddr, remotePort, localPort) !== undefined;
  }

  /** File `c` under its tuple (replacing whatever held that tuple). */
  set(c: C): void {
    const i = this.find(c.remoteAddr, c.remotePort, c.localPort);
    if (this.slots[i] === undefined) {
      if ((this.#size + 1) * 2 > this.slots.length) {
        this.resize(this.slots.length * 2);
        this.slots[this.find(c.remoteAddr, c.remotePort, c.localPort)] = c;
      } else this.slots[i] = c;
      this.#size++;
    } else this.slots[i] = c; // the same tuple: replaced
  }

  /** Remove `c`, only if it is the one filed under its tuple (a newer incarnation may be). */
  delete(c: C): void {
    const slots = this.slots;
    const mask = this.mask;
    let hole = this.find(c.remoteAddr, c.remotePort, c.localPort);
    if (slots[hole] !== c) return;
    // Backward shift: an entry further along the run moves into the hole unless its own
    // probe starts after the hole (then it would be moved before where lookups begin).
    for (let j = (hole + 1) & mask; slots[j] !== undefined; j = (j + 1) & mask) {
      const e = slots[j]!;
      const home = tupleHash(this.secret, e.remoteAddr, e.remotePort, e.localPort) & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        slots[hole] = e;
        hole = j;
      }
    }
    slots[hole] = undefined;
    this.#size--;
    if (this.#size * 8 < slots.length && slots.length > MIN_SLOTS) this.resize(slots.length / 2);
  }

  *values(): IterableIterator<C> {
    for (const c of this.slots) if (c !== undefined) yield c;
  }

  /** The slot holding the tuple, or the empty slot where its probe ends. */
  private find(remoteAddr: Ipv4Addr, remotePort: number, localPort: number): number {
    const slots = this.slots;
    const mask = this.mask;
    let i = tupleHash(this.secret, remoteAddr, remotePort, localPort) & mask;
    while (slots[i] !== undefined && !sameTuple(slots[i]!, remoteAddr, remotePort, localPort)) i = (i + 1) & mask;
    return i;
  }

  private resize(n: number): void {
    const old = this.slots;
    this.slots = new Array<C | undefined>(n).fill(undefined);
    this.mask = n - 1;
    for (const c of old) if (c !== undefined) this.slots[this.find(c.remoteAddr, c.remotePort, c.localPort)] = c;
  }
}

/** The same tuple, with the address compared unsigned (an address from `|` is signed). */
function sameTuple(c: TupleOwner, remoteAddr: Ipv4Addr, remotePort: number, localPort: number): boolean {
  return c.remotePort === remotePort && c.localPort === localPort && c.remoteAddr >>> 0 === remoteAddr >>> 0;
}

function rot(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Jenkins' lookup3 hash of three words (Linux's jhash_3words), keyed by `secret`. */
export function tupleHash(secret: number, remoteAddr: Ipv4Addr, remotePort: number, localPort: number): number {
  const init = (0xdeadbeef + 12 + secret) | 0;
  let a = (init + (remoteAddr | 0)) | 0;
  let b = (init + localPort) | 0;
  let c = (init + remotePort) | 0;
  c ^= b; c = (c - rot(b, 14)) | 0;
  a ^= c; a = (a - rot(c, 11)) | 0;
  b ^= a; b = (b - rot(a, 25)) | 0;
  c ^= b; c = (c - rot(b, 16)) | 0;
  a ^= c; a = (a - rot(c, 4)) | 0;
  b ^= a; b = (b - rot(a, 14)) | 0;
  c ^= b; c = (c - rot(b, 24)) | 0;
  return c >>> 0;
}
