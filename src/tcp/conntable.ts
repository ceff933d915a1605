/**
 * The layer's connections by 4-tuple. Our address is the stack's one address, so a connection is
 * found by (our port, remote address, remote port): a map per local port, inside it a map keyed by
 * the number remoteAddr * 65536 + remotePort (exact: below 2^48, so no two tuples share a key).
 *
 * Numbers rather than one "addr:port:port" string key: the string was built, and then hashed by the
 * Map, for every segment received — measured as the costliest single line of the receive path.
 * Every lookup stays O(1) (DESIGN.md: never a linear scan per packet).
 *
 * A local port with one connection holds it directly, without an inner map: a server's port holds
 * many, but every connection we open has an ephemeral port of its own, and a map per connection
 * (about 250 bytes of heap) would be most of what a proxy's upstream connection costs the table.
 */
import type { Ipv4Addr } from '../ip/addr.js';

/** What the table needs of a connection: its tuple (ours and the peer's port and address). */
export interface TupleOwner {
  readonly localPort: number;
  readonly remoteAddr: Ipv4Addr;
  readonly remotePort: number;
}

export class ConnectionTable<C extends TupleOwner> {
  /** Per local port: its one connection, or a map of its connections by remoteKey. */
  private readonly byLocalPort = new Map<number, C | Map<number, C>>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(remoteAddr: Ipv4Addr, remotePort: number, localPort: number): C | undefined {
    const e = this.byLocalPort.get(localPort);
    if (e === undefined) return undefined;
    if (e instanceof Map) return e.get(remoteKey(remoteAddr, remotePort));
    return sameRemote(e, remoteAddr, remotePort) ? e : undefined;
  }

  has(remoteAddr: Ipv4Addr, remotePort: number, localPort: number): boolean {
    return this.get(remoteAddr, remotePort, localPort) !== undefined;
  }

  /** File `c` under its tuple (replacing whatever held that tuple). */
  set(c: C): void {
    const e = this.byLocalPort.get(c.localPort);
    if (e === undefined) {
      this.byLocalPort.set(c.localPort, c);
      this.#size++;
    } else if (e instanceof Map) {
      const key = remoteKey(c.remoteAddr, c.remotePort);
      if (!e.has(key)) this.#size++;
      e.set(key, c);
    } else if (sameRemote(e, c.remoteAddr, c.remotePort)) {
      this.byLocalPort.set(c.localPort, c); // the same tuple: replaced
    } else {
      const inner = new Map<number, C>([[remoteKey(e.remoteAddr, e.remotePort), e]]);
      inner.set(remoteKey(c.remoteAddr, c.remotePort), c);
      this.byLocalPort.set(c.localPort, inner);
      this.#size++;
    }
  }

  /** Remove `c`, only if it is the one filed under its tuple (a newer incarnation may be). */
  delete(c: C): void {
    const e = this.byLocalPort.get(c.localPort);
    if (e === undefined) return;
    if (!(e instanceof Map)) {
      if (e !== c) return;
      this.byLocalPort.delete(c.localPort);
      this.#size--;
      return;
    }
    const key = remoteKey(c.remoteAddr, c.remotePort);
    if (e.get(key) !== c) return;
    e.delete(key);
    this.#size--;
    if (e.size === 0) this.byLocalPort.delete(c.localPort);
  }

  *values(): IterableIterator<C> {
    for (const e of this.byLocalPort.values()) {
      if (e instanceof Map) yield* e.values();
      else yield e;
    }
  }
}

/** The same peer, with the address compared as remoteKey does (unsigned: an address from `|` is signed). */
function sameRemote(c: TupleOwner, remoteAddr: Ipv4Addr, remotePort: number): boolean {
  return c.remotePort === remotePort && c.remoteAddr >>> 0 === remoteAddr >>> 0;
}

function remoteKey(remoteAddr: Ipv4Addr, remotePort: number): number {
  return (remoteAddr >>> 0) * 65536 + remotePort;
}
