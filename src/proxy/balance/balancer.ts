/**
 * One upstream block's load balancing: the method, the peers, and per request a Picker that
 * hands out the next peer to try (the first choice, then one per retry), falling back to the
 * backup servers once no primary can be used — the order of nginx's get-peer functions.
 * Pure: the caller passes `now` and reports each attempt's outcome with release().
 */
import type { Ring } from './chash.js';
import { buildRing, pickChash, startChash } from './chash.js';
import { IP_HASH_INITIAL, pickIpHash } from './ip-hash.js';
import { pickLeastConn } from './least-conn.js';
import type { Peer, PeerConfig, PeerSet } from './peer.js';
import { makePeer, releasePeer } from './peer.js';
import { pickWeighted } from './round-robin.js';

export type BalanceMethod = 'round-robin' | 'least-conn' | 'ip-hash' | 'hash';

/** What a method may look at for one request. */
export interface PickInput {
  /** The client's IPv4 address as a 32-bit number (ip_hash). */
  clientAddr: number;
  /** The evaluated hash key (hash): e.g. the request URI. */
  key: string;
}

export class Balancer {
  readonly peers: PeerSet;
  /** Every peer, primaries first. */
  readonly all: Peer[];
  private readonly ring: Ring | undefined;

  constructor(
    readonly method: BalanceMethod,
    servers: readonly PeerConfig[],
  ) {
    this.all = servers.map(makePeer);
    this.peers = { primary: this.all.filter((p) => !p.backup), backup: this.all.filter((p) => p.backup) };
    if (this.peers.primary.length === 0) throw new Error('an upstream needs at least one server that is not a backup');
    if (method === 'hash') this.ring = buildRing(this.peers.primary);
  }

  /** One server and no backup: nginx never marks it failed (there is nowhere else to go). */
  get single(): boolean {
    return this.peers.primary.length === 1 && this.peers.backup.length === 0;
  }

  /** Attempts one request may make (nginx: proxy_next_upstream_tries 0 = every server once). */
  get maxTries(): number {
    return this.all.length;
  }

  start(input: PickInput): Picker {
    return new Picker(this, input);
  }

  /** The attempt on `peer` ended; `failed` counts toward max_fails. */
  release(peer: Peer, failed: boolean, now: number): void {
    releasePeer(peer, failed, now, this.single);
  }

  /** @internal the primary choice by method. */
  pickPrimary(p: Picker, now: number): Peer | undefined {
    const primary = this.peers.primary;
    switch (this.method) {
      case 'round-robin':
        return pickWeighted(primary, p.tried, now);
      case 'least-conn':
        return pickLeastConn(primary, p.tried, now);
      case 'ip-hash':
        return pickIpHash(primary, p.input.clientAddr, p.ipHash, p.tried, now) ?? pickWeighted(primary, p.tried, now);
      case 'hash':
        p.chash ??= startChash(this.ring!, p.input.key);
        return pickChash(this.ring!, primary, p.chash, p.tried, now);
    }
  }
}

export class Picker {
  readonly tried = new Set<Peer>();
  readonly ipHash = { hash: IP_HASH_INITIAL, tries: 0 };
  chash: { point: number; tries: number } | undefined;
  private onBackups = false;

  constructor(
    private readonly b: Balancer,
    readonly input: PickInput,
  ) {}

  /** The next peer to try, or undefined when none is left (→ 502). */
  next(now: number): Peer | undefined {
    const b = this.b;
    if (b.single) {
      const p = b.peers.primary[0]!;
      if (p.down || this.tried.has(p)) return undefined;
      this.tried.add(p);
      p.conns++;
      return p;
    }
    if (!this.onBackups) {
      const p = b.pickPrimary(this, now);
      if (p) {
        this.tried.add(p);
        return p;
      }
      if (b.peers.backup.length === 0) return undefined;
      this.onBackups = true;
    }
    const backup = b.peers.backup;
    const p = b.method === 'least-conn' ? pickLeastConn(backup, this.tried, now) : pickWeighted(backup, this.tried, now);
    if (p) this.tried.add(p);
    return p;
  }
}
