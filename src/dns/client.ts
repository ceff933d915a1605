/**
 * The resolver on a Stack: runtime side of ./resolver.ts (like src/tcp/socket.ts is for
 * TCP). It binds the stack's UDP sockets and opens its TCP connections as the state machine
 * asks, feeds it what arrives, and lets the Stack poll its deadlines. Lookups are promises
 * that reject with Node-style errors (`err.code` = ENOTFOUND, ETIMEOUT, ...).
 */
import { randomInt } from 'node:crypto';
import type { Stack } from '../stack.js';
import type { TcpSocket } from '../tcp/socket.js';
import type { UdpSocket } from '../udp/socket.js';
import type { LookupOutcome, LookupResult, ResolverEvent, ResolverOptions, ResolverServer } from './resolver.js';
import { ResolverCore } from './resolver.js';
import { TcpFramer } from './server.js';
import { TYPE } from './wire.js';
import { FreshMap } from '../runtime/fresh-map.js';

export type DnsClientOptions = Omit<ResolverOptions, 'random' | 'servers'> & {
  servers: Array<string | ResolverServer>;
  /** Seeded in simulations; crypto.randomInt by default (RFC 5452 wants unpredictable IDs and ports). */
  random?: () => number;
  trace?: (e: ResolverEvent) => void;
};

export class DnsClient {
  readonly core: ResolverCore;
  private readonly udp = new FreshMap<number, UdpSocket>();
  private readonly tcp = new FreshMap<number, TcpSocket>();
  private readonly pending = new FreshMap<number, { resolve: (r: LookupResult) => void; reject: (e: Error) => void }>();
  private readonly early = new FreshMap<number, LookupOutcome>();

  constructor(
    private readonly stack: Stack,
    opts: DnsClientOptions,
  ) {
    const servers = opts.servers.map((s) => (typeof s === 'string' ? { address: s, port: 53 } : s));
    const random = opts.random ?? (() => randomInt(0, 2 ** 32) / 2 ** 32);
    const trace = opts.trace;
    this.core = new ResolverCore(
      { ...opts, servers, random },
      {
        openUdp: (port) => this.openUdp(port),
        sendUdp: (port, to, bytes) => this.udp.get(port)?.send(bytes, to.port, to.address),
        closeUdp: (port) => {
          const s = this.udp.get(port);
          this.udp.delete(port);
          s?.close();
        },
        sendTcp: (conn, to, bytes) => this.openTcp(conn, to, bytes),
        closeTcp: (conn) => {
          const s = this.tcp.get(conn);
          this.tcp.delete(conn);
          s?.destroy();
        },
        done: (key, outcome) => this.settle(key, outcome),
        ...(trace ? { trace } : {}),
      },
    );
    stack.addTimed(this.core);
  }

  /** Records of `type` for `name` (A by default). */
  resolve(name: string, type: number = TYPE.A): Promise<LookupResult> {
    return new Promise((resolve, reject) => {
      const key = this.core.lookup(name, type, this.stack.clock.now());
      this.pending.set(key, { resolve, reject });
      // The core answers some lookups at once (cache hits, bad names).
      const early = this.early.get(key);
      if (early) {
        this.early.delete(key);
        this.settle(key, early);
      }
      this.stack.kick();
    });
  }

  /** Stop: cancel lookups in flight (ECANCELLED) and release ports and connections. */
  close(): void {
    for (const key of [...this.pending.keys()]) this.core.cancel(key);
    this.stack.removeTimed(this.core);
  }

  private settle(key: number, outcome: LookupOutcome): void {
    const p = this.pending.get(key);
    if (!p) {
      this.early.set(key, outcome);
      return;
    }
    this.pending.delete(key);
    if (outcome.ok) p.resolve(outcome.result);
    else p.reject(Object.assign(new Error(outcome.error.message), { code: outcome.error.code }));
  }

  private openUdp(port: number): number | undefined {
    const s = this.stack.udp.createSocket('udp4');
    try {
      s.bind(port);
    } catch {
      return undefined;
    }
    // A port in use shows up as an 'error' event after bind: check now, synchronously.
    let bound: number | undefined;
    try {
      bound = s.address().port;
    } catch {
      s.removeAllListeners();
      s.on('error', () => {});
      return undefined;
    }
    s.on('error', () => {}); // ICMP errors on unconnected sockets are not reported; nothing else can fail
    s.on('message', (msg, rinfo) => this.core.onUdp(bound!, { address: rinfo.address, port: rinfo.port }, msg, this.stack.clock.now()));
    this.udp.set(bound, s);
    return bound;
  }

  private openTcp(conn: number, to: ResolverServer, bytes: Uint8Array): void {
    const sock = this.stack.connect({ host: to.address, port: to.port });
    this.tcp.set(conn, sock);
    const framer = new TcpFramer();
    let refused = false;
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (chunk: Buffer) => {
      for (const msg of framer.push(chunk)) this.core.onTcpMessage(conn, msg, this.stack.clock.now());
      this.stack.kick();
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      refused = err.code === 'ECONNREFUSED';
    });
    sock.on('close', () => {
      if (this.tcp.get(conn) !== sock) return;
      this.tcp.delete(conn);
      this.core.onTcpClosed(conn, refused, this.stack.clock.now());
      this.stack.kick();
    });
  }
}
