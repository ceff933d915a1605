/**
 * One upstream block at run time: its balancer, per-server counters, and the keep-alive pool
 * of idle connections (nginx's `keepalive N`: at most N idle connections for the whole block,
 * the least recently used closed first; an idle connection closes after keepalive_timeout, or
 * as soon as the server closes it or sends anything).
 */
import type { Duplex } from 'node:stream';
import type { Clock, ClockTimer } from '../runtime/clock.js';
import { Balancer } from './balance/balancer.js';
import type { Peer } from './balance/peer.js';
import { isFailed } from './balance/peer.js';
import type { UpstreamConfig } from './config.js';

/** A connection to an upstream server: netstack's TcpSocket (or a net.Socket in tests). */
export type UpstreamSocket = Duplex & { setNoDelay?(noDelay?: boolean): unknown };

export interface UpstreamConn {
  socket: UpstreamSocket;
  peer: Peer;
  /** Requests sent on this connection so far. */
  requests: number;
}

export interface PeerCounters {
  requests: number;
  failures: number;
  /** Responses by status class, e.g. { '2xx': 10 }. */
  responses: Record<string, number>;
}

interface Idle {
  conn: UpstreamConn;
  timer: ClockTimer;
  detach: () => void;
}

export class UpstreamGroup {
  readonly balancer: Balancer;
  readonly counters = new Map<Peer, PeerCounters>();
  private idle: Idle[] = [];
  /** Connections opened, reused from the pool, and closed from it (idle timeout, eviction, server close). */
  readonly poolStats = { opened: 0, reused: 0, closedIdle: 0 };

  constructor(
    readonly config: UpstreamConfig,
    private readonly clock: Clock,
  ) {
    this.balancer = new Balancer(config.method, config.servers);
    for (const p of this.balancer.all) this.counters.set(p, { requests: 0, failures: 0, responses: {} });
  }

  get name(): string {
    return this.config.name;
  }

  get idleCount(): number {
    return this.idle.length;
  }

  /** The most recently parked idle connection to `peer`, if any. */
  takeIdle(peer: Peer): UpstreamConn | undefined {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const it = this.idle[i]!;
      if (it.conn.peer !== peer) continue;
      this.idle.splice(i, 1);
      it.timer.clear();
      it.detach();
      this.poolStats.reused++;
      return it.conn;
    }
    return undefined;
  }

  /** Park a connection whose response completed; false if the pool is off or it has served enough. */
  putIdle(conn: UpstreamConn): boolean {
    const cfg = this.config;
    if (cfg.keepalive === 0 || conn.requests >= cfg.keepaliveRequests) return false;
    const socket = conn.socket;
    const drop = (how: 'end' | 'destroy') => {
      const i = this.idle.indexOf(entry);
      if (i < 0) return;
      this.idle.splice(i, 1);
      entry.timer.clear();
      entry.detach();
      this.poolStats.closedIdle++;
      if (how === 'end') socket.end();
      else socket.destroy();
    };
    // Anything from the server while idle is a close or a protocol error: the connection is done.
    const onData = () => drop('destroy');
    const onEnd = () => drop('end');
    const onClose = () => drop('destroy');
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    const entry: Idle = {
      conn,
      // keepalive_timeout: we close first, so this side holds the TIME-WAIT.
      timer: this.clock.timer(() => drop('end')),
      detach: () => {
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('close', onClose);
      },
    };
    entry.timer.set(this.clock.now() + cfg.keepaliveTimeoutMs);
    this.idle.push(entry);
    socket.resume(); // so a FIN from the server is seen while idle
    if (this.idle.length > cfg.keepalive) {
      // Over the limit: close the least recently used (nginx).
      const oldest = this.idle.shift()!;
      oldest.timer.clear();
      oldest.detach();
      this.poolStats.closedIdle++;
      oldest.conn.socket.end();
    }
    return true;
  }

  /** Close every idle connection (shutdown). */
  closeIdle(): void {
    for (const it of this.idle) {
      it.timer.clear();
      it.detach();
      it.conn.socket.end();
    }
    this.idle = [];
  }

  /** Per-server state for the status page and /metrics. */
  describe(now: number): UpstreamPeerInfo[] {
    return this.balancer.all.map((p) => {
      const c = this.counters.get(p)!;
      return {
        upstream: this.name,
        server: p.name,
        state: p.down ? 'down' : isFailed(p, now) ? 'failed' : p.backup ? 'backup' : 'up',
        weight: p.weight,
        currentWeight: p.currentWeight,
        effectiveWeight: p.effectiveWeight,
        active: p.conns,
        requests: c.requests,
        failures: c.failures,
        fails: p.fails,
      };
    });
  }
}

export interface UpstreamPeerInfo {
  upstream: string;
  server: string;
  /** up, backup (a backup server that can be used), failed (max_fails reached), down (configured). */
  state: 'up' | 'backup' | 'failed' | 'down';
  weight: number;
  currentWeight: number;
  effectiveWeight: number;
  active: number;
  requests: number;
  failures: number;
  /** Failures inside the current fail_timeout window. */
  fails: number;
}
