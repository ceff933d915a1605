/**
 * The layer's connections by 4-tuple. Our address is the stack's one address, so a connection is
 * found by (our port, remote address, remote port): a map per local port, inside it a map keyed by
 * the number remoteAddr * 65536 + remotePort (exact: below 2^48, so no two tuples share a key).
 *
 * Numbers rather than one "addr:port:port" string key: the string was built, and then hashed by the
 * Map, for every segment received — measured as the costliest single line of the receive path.
 * Every lookup stays O(1) (DESIGN.md: never a linear scan per packet).
 */
import type { Ipv4Addr } from '../ip/addr.js';

/** What the table needs of a connection: its tuple (ours and the peer's port and address). */
export interface TupleOwner {
  readonly localPort: number;
  readonly remoteAddr: Ipv4Addr;
  readonly remotePort: number;
}

export class ConnectionTable<C extends TupleOwner> {
  private readonly byLocalPort = new Map<number, Map<number, C>>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(remoteAddr: Ipv4Addr, remotePort: number, localPort: number): C | undefined {
    return this.byLocalPort.get(localPort)?.get(remoteKey(remoteAddr, remotePort));
  }

  has(remoteAddr: Ipv4Addr, remotePort: number, localPort: number): boolean {
    return this.get(remoteAddr, remotePort, localPort) !== undefined;
  }

  /** File `c` under its tuple (replacing whatever held that tuple). */
  set(c: C): void {
    let inner = this.byLocalPort.get(c.localPort);
    if (inner === undefined) this.byLocalPort.set(c.localPort, (inner = new Map()));
    const key = remoteKey(c.remoteAddr, c.remotePort);
    if (!inner.has(key)) this.#size++;
    inner.set(key, c);
  }

  /** Remove `c`, only if it is the one filed under its tuple (a newer incarnation may be). */
  delete(c: C): void {
    const inner = this.byLocalPort.get(c.localPort);
    const key = remoteKey(c.remoteAddr, c.remotePort);
    if (inner === undefined || inner.get(key) !== c) return;
    inner.delete(key);
    this.#size--;
    if (inner.size === 0) this.byLocalPort.delete(c.localPort);
  }

  *values(): IterableIterator<C> {
    for (const inner of this.byLocalPort.values()) yield* inner.values();
  }
}

function remoteKey(remoteAddr: Ipv4Addr, remotePort: number): number {
  return (remoteAddr >>> 0) * 65536 + remotePort;
}
