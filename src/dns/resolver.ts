/**
 * A stub resolver's state machine (RFC 1034 section 5.3.1), sans-I/O: lookups go in, and
 * out come requests to send bytes (through `ResolverIo`), results, and deadlines that the
 * runtime polls with `poll(now)`. The runtime (./client.ts) moves the bytes over the
 * stack's UDP and TCP.
 *
 * - Every attempt uses a fresh random source port and a fresh random ID (RFC 5452
 *   section 9.2), and an answer is accepted only when it comes from the server's address
 *   and port to that port, with that ID, as a response to the same question (section 9.1).
 *   Anything else is counted and ignored: the attempt keeps waiting.
 * - Attempts time out and are retried with exponential backoff, then the next server,
 *   all within a total timeout (ETIMEOUT). Earlier attempts of a lookup stay open, so a
 *   late answer to one of them is still taken.
 * - A truncated answer (TC) is asked again over TCP (RFC 7766 section 5).
 * - CNAME chains are followed, inside one answer and by asking again, up to a bound.
 * - Answers are cached for their TTL (the smallest in the chain), NXDOMAIN and NODATA for
 *   the SOA's negative TTL (RFC 2308 section 5); the cache has a bounded number of entries.
 * Errors carry Node's `dns` codes: ENOTFOUND, ENODATA, ETIMEOUT, ESERVFAIL, EREFUSED, ...
 */
import { canonicalName, isValidName } from './name.js';
import type { DnsMessage, DnsRecord } from './wire.js';
import { CLASS_IN, RCODE, TYPE, dnsMessage, parseDns, recordType, typeName, writeDns } from './wire.js';
import { FreshMap } from '../runtime/fresh-map.js';

export interface ResolverServer {
  address: string;
  port: number;
}

export interface ResolverOptions {
  servers: ResolverServer[];
  /** Random numbers in [0, 1): crypto-strength in the runtime, seeded in tests. */
  random: () => number;
  /** First attempt's timeout (ms); each retry doubles it. Default 1000. */
  timeout?: number;
  /** Attempts per server. Default 3. */
  attempts?: number;
  /** Longest a lookup may take, retries and CNAME hops included (ms). Default 10000. */
  totalTimeout?: number;
  /** Longest CNAME chain followed. Default 8. */
  maxCnameChain?: number;
  /** Cached answers kept. Default 1000. */
  cacheSize?: number;
  /** Cap on any TTL honoured (s). Default 86400; negative answers at most 3 h (RFC 2308 section 5). */
  maxTtl?: number;
  /** EDNS(0) UDP size offered (RFC 6891); 0 sends no OPT record. Default 1232. */
  ednsSize?: number;
  /** Lookups in flight at once. Default 256. */
  maxInflight?: number;
}

/** What the runtime does for the resolver. */
export interface ResolverIo {
  /** Bind a UDP port (try `port`); return the port bound, or undefined when it is taken. */
  openUdp(port: number): number | undefined;
  sendUdp(localPort: number, to: ResolverServer, bytes: Uint8Array): void;
  closeUdp(localPort: number): void;
  /** Open a TCP connection for `conn` to `to`, send `bytes` (already length-prefixed), and report with onTcpMessage/onTcpClosed. */
  sendTcp(conn: number, to: ResolverServer, bytes: Uint8Array): void;
  closeTcp(conn: number): void;
  /** A lookup ended. */
  done(lookup: number, outcome: LookupOutcome): void;
  /** What the resolver is doing, for timelines and logs. Optional. */
  trace?(event: ResolverEvent): void;
}

export interface LookupResult {
  /** The name asked for, and the name the records belong to after CNAMEs. */
  name: string;
  canonicalName: string;
  type: number;
  records: DnsRecord[];
  /** The CNAME targets followed, in order. */
  cnames: string[];
  /** Seconds the answer stays valid (the smallest TTL involved). */
  ttl: number;
  fromCache: boolean;
}

export type ResolverErrorCode = 'ENOTFOUND' | 'ENODATA' | 'ETIMEOUT' | 'ESERVFAIL' | 'EREFUSED' | 'ENOTIMP' | 'EFORMERR' | 'EBADNAME' | 'ECONNREFUSED' | 'ELOOP' | 'ECANCELLED' | 'EBUSY' | 'EBADRESP';

export interface ResolverError {
  code: ResolverErrorCode;
  message: string;
}

export type LookupOutcome = { ok: true; result: LookupResult } | { ok: false; error: ResolverError };

export type ResolverEvent =
  | { kind: 'query'; lookup: number; name: string; type: number; transport: 'udp' | 'tcp'; server: ResolverServer; localPort?: number | undefined; id: number; attempt: number }
  | { kind: 'response'; lookup: number; name: string; type: number; transport: 'udp' | 'tcp'; rcode: number; tc: boolean; answers: DnsRecord[]; id: number }
  | { kind: 'ignored'; reason: string; localPort?: number }
  | { kind: 'timeout'; lookup: number; attempt: number }
  | { kind: 'cache'; lookup: number; name: string; type: number };

interface Attempt {
  id: number;
  port: number;
  server: ResolverServer;
}

interface Lookup {
  key: number;
  /** The original name and the name currently asked (after CNAME hops). */
  name: string;
  qname: string;
  type: number;
  cnames: string[];
  minTtl: number;
  started: number;
  deadline: number;
  /** Index into servers, and attempt number on that server. */
  server: number;
  tries: number;
  attemptDeadline: number;
  udp: Attempt[];
  tcp?: { conn: number; id: number; server: ResolverServer };
}

interface CacheEntry {
  expires: number;
  outcome: LookupOutcome;
}

const NEGATIVE_TTL_CAP = 3 * 3600;

export class ResolverCore {
  private readonly servers: ResolverServer[];
  private readonly random: () => number;
  private readonly timeout: number;
  private readonly attempts: number;
  private readonly totalTimeout: number;
  private readonly maxChain: number;
  private readonly cacheSize: number;
  private readonly maxTtl: number;
  private readonly ednsSize: number;
  private readonly maxInflight: number;
  private readonly lookups = new FreshMap<number, Lookup>();
  private readonly byPort = new FreshMap<number, Lookup>();
  private readonly byConn = new FreshMap<number, Lookup>();
  private readonly cache = new FreshMap<string, CacheEntry>();
  private nextLookup = 1;
  private nextConn = 1;
  readonly stats: Record<string, number> = {};

  constructor(
    opts: ResolverOptions,
    private readonly io: ResolverIo,
  ) {
    if (opts.servers.length === 0) throw new RangeError('ResolverCore needs at least one server');
    this.servers = opts.servers.map((s) => ({ ...s }));
    this.random = opts.random;
    this.timeout = opts.timeout ?? 1000;
    this.attempts = opts.attempts ?? 3;
    this.totalTimeout = opts.totalTimeout ?? 10_000;
    this.maxChain = opts.maxCnameChain ?? 8;
    this.cacheSize = opts.cacheSize ?? 1000;
    this.maxTtl = opts.maxTtl ?? 86400;
    this.ednsSize = opts.ednsSize ?? 1232;
    this.maxInflight = opts.maxInflight ?? 256;
  }

  /** Start a lookup of `name` (records of `type`); the outcome arrives through io.done. */
  lookup(name: string, type: number, now: number): number {
    const key = this.nextLookup++;
    if (!isValidName(name) || canonicalName(name) === '') {
      this.io.done(key, fail('EBADNAME', `"${name}" is not a valid domain name`));
      return key;
    }
    const qname = canonicalName(name);
    const cached = this.fromCache(qname, type, now);
    if (cached) {
      this.io.trace?.({ kind: 'cache', lookup: key, name: qname, type });
      this.count('cache.hit');
      this.io.done(key, cached);
      return key;
    }
    if (this.lookups.size >= this.maxInflight) {
      this.io.done(key, fail('EBUSY', `more than ${this.maxInflight} lookups in flight`));
      return key;
    }
    const l: Lookup = { key, name: qname, qname, type, cnames: [], minTtl: Infinity, started: now, deadline: now + this.totalTimeout, server: 0, tries: 0, attemptDeadline: Infinity, udp: [] };
    this.lookups.set(key, l);
    this.sendUdp(l, now);
    return key;
  }

  /** Stop a lookup; its outcome is ECANCELLED. */
  cancel(key: number): void {
    const l = this.lookups.get(key);
    if (l) this.finish(l, fail('ECANCELLED', 'the lookup was cancelled'));
  }

  /** A datagram to one of our ports. */
  onUdp(localPort: number, from: ResolverServer, bytes: Uint8Array, now: number): void {
    const l = this.byPort.get(localPort);
    if (!l) return this.ignore('no-lookup', localPort);
    const attempt = l.udp.find((a) => a.port === localPort)!;
    // RFC 5452 section 9.1: the answer must come from where the query went.
    if (from.address !== attempt.server.address || from.port !== attempt.server.port) return this.ignore('wrong-source', localPort);
    const msg = this.match(l, attempt.id, bytes);
    if (typeof msg === 'string') return this.ignore(msg, localPort);
    this.onResponse(l, msg, 'udp', attempt.server, now);
  }

  /** A whole message (length prefix removed) on a lookup's TCP connection. */
  onTcpMessage(conn: number, bytes: Uint8Array, now: number): void {
    const l = this.byConn.get(conn);
    if (!l || !l.tcp) return this.ignore('no-lookup');
    const msg = this.match(l, l.tcp.id, bytes);
    if (typeof msg === 'string') return this.ignore(msg);
    if (msg.tc) {
      // A truncated answer over TCP cannot be asked again anywhere better.
      return this.finish(l, fail('EBADRESP', 'the server truncated its answer even over TCP'));
    }
    this.onResponse(l, msg, 'tcp', l.tcp.server, now);
  }

  /** The TCP connection ended or failed before an answer: move on to the next server. */
  onTcpClosed(conn: number, refused: boolean, now: number): void {
    const l = this.byConn.get(conn);
    if (!l) return;
    this.dropTcp(l);
    this.count(refused ? 'tcp.refused' : 'tcp.closed');
    if (!this.nextServer(l, now)) this.finish(l, fail(refused ? 'ECONNREFUSED' : 'ETIMEOUT', `the DNS server ${fmt(this.servers[l.server]!)} closed TCP without an answer`));
  }

  poll(now: number): void {
    for (const l of [...this.lookups.values()]) {
      if (now >= l.deadline) {
        this.finish(l, fail('ETIMEOUT', `no answer for ${l.qname} from ${this.servers.map(fmt).join(', ')} within ${this.totalTimeout} ms`));
        continue;
      }
      if (now < l.attemptDeadline) continue;
      this.io.trace?.({ kind: 'timeout', lookup: l.key, attempt: l.tries });
      this.count('timeouts');
      if (l.tcp) {
        this.dropTcp(l);
        if (!this.nextServer(l, now)) this.finish(l, fail('ETIMEOUT', `no answer over TCP for ${l.qname}`));
        continue;
      }
      if (l.tries < this.attempts) this.sendUdp(l, now);
      else if (!this.nextServer(l, now)) {
        this.finish(l, fail('ETIMEOUT', `no answer for ${l.qname} from ${this.servers.map(fmt).join(', ')} after ${this.attempts} attempts each`));
      }
    }
  }

  nextDeadline(): number {
    let at = Infinity;
    for (const l of this.lookups.values()) at = Math.min(at, l.deadline, l.attemptDeadline);
    return at;
  }

  /** Lookups in flight, UDP ports and TCP connections held, cache entries: for tests and /metrics. */
  get sizes(): { lookups: number; ports: number; conns: number; cache: number } {
    return { lookups: this.lookups.size, ports: this.byPort.size, conns: this.byConn.size, cache: this.cache.size };
  }

  // ───────────────────────── attempts ─────────────────────────

  private sendUdp(l: Lookup, now: number): void {
    const server = this.servers[l.server]!;
    let port: number | undefined;
    // RFC 6056 / 5452: a random port from 1024..65535; a few tries if one is taken.
    for (let i = 0; i < 16 && port === undefined; i++) {
      const want = 1024 + Math.floor(this.random() * (65536 - 1024));
      if (!this.byPort.has(want)) port = this.io.openUdp(want);
    }
    if (port === undefined) return this.finish(l, fail('EBUSY', 'no free UDP port for a DNS query'));
    const id = Math.floor(this.random() * 65536);
    const attempt = { id, port, server };
    l.udp.push(attempt);
    this.byPort.set(port, l);
    l.tries++;
    // Exponential backoff: timeout, 2x, 4x, ... never past the lookup's deadline.
    l.attemptDeadline = Math.min(now + this.timeout * 2 ** (l.tries - 1), l.deadline);
    this.io.trace?.({ kind: 'query', lookup: l.key, name: l.qname, type: l.type, transport: 'udp', server, localPort: port, id, attempt: l.tries });
    this.count('queries.udp');
    this.io.sendUdp(port, server, this.query(l, id));
  }

  private sendTcp(l: Lookup, server: ResolverServer, now: number): void {
    this.closeUdp(l);
    const conn = this.nextConn++;
    const id = Math.floor(this.random() * 65536);
    l.tcp = { conn, id, server };
    this.byConn.set(conn, l);
    l.attemptDeadline = Math.min(now + this.timeout * 2 ** this.attempts, l.deadline);
    this.io.trace?.({ kind: 'query', lookup: l.key, name: l.qname, type: l.type, transport: 'tcp', server, id, attempt: l.tries });
    this.count('queries.tcp');
    const q = this.query(l, id, false);
    const framed = new Uint8Array(2 + q.length);
    framed[0] = q.length >>> 8;
    framed[1] = q.length & 0xff;
    framed.set(q, 2);
    this.io.sendTcp(conn, server, framed);
  }

  /** Move to the next server (fresh attempts). False when none is left. */
  private nextServer(l: Lookup, now: number): boolean {
    if (l.server + 1 >= this.servers.length) return false;
    this.closeUdp(l);
    l.server++;
    l.tries = 0;
    this.sendUdp(l, now);
    return this.lookups.has(l.key);
  }

  private query(l: Lookup, id: number, edns = true): Uint8Array {
    const m = dnsMessage({ id, rd: true, questions: [{ name: l.qname, type: l.type, class: CLASS_IN }] });
    if (edns && this.ednsSize > 0) m.edns = { udpSize: this.ednsSize, extendedRcode: 0, version: 0, dnssecOk: false, options: [] };
    return writeDns(m);
  }

  /** The parsed response if it answers our question with our ID, else why not (RFC 5452 section 9.1). */
  private match(l: Lookup, id: number, bytes: Uint8Array): DnsMessage | string {
    const m = parseDns(bytes);
    if ('error' in m) return 'malformed';
    if (!m.qr) return 'not-a-response';
    if (m.id !== id) return 'wrong-id';
    const q = m.questions[0];
    if (m.questions.length !== 1 || !q || canonicalName(q.name) !== l.qname || q.type !== l.type || q.class !== CLASS_IN) return 'wrong-question';
    return m;
  }

  // ───────────────────────── answers ─────────────────────────

  private onResponse(l: Lookup, m: DnsMessage, transport: 'udp' | 'tcp', server: ResolverServer, now: number): void {
    this.io.trace?.({ kind: 'response', lookup: l.key, name: l.qname, type: l.type, transport, rcode: m.rcode, tc: m.tc, answers: m.answers, id: m.id });
    if (m.tc && transport === 'udp') {
      this.count('truncated');
      return this.sendTcp(l, server, now);
    }
    const rcode = m.rcode | ((m.edns?.extendedRcode ?? 0) << 4);
    if (rcode === RCODE.NXDOMAIN) {
      const out = fail('ENOTFOUND', `${l.name} does not exist (NXDOMAIN from ${fmt(server)})`);
      this.cacheNegative(l, m, out, now);
      return this.finish(l, out);
    }
    if (rcode !== RCODE.NOERROR) {
      // Another server may do better (c-ares and glibc move on after SERVFAIL and REFUSED).
      this.count('rcode.' + rcode);
      if (this.nextServer(l, now)) return;
      const code: ResolverErrorCode = rcode === RCODE.SERVFAIL ? 'ESERVFAIL' : rcode === RCODE.REFUSED ? 'EREFUSED' : rcode === RCODE.NOTIMP ? 'ENOTIMP' : rcode === RCODE.FORMERR ? 'EFORMERR' : 'ESERVFAIL';
      return this.finish(l, fail(code, `${fmt(server)} answered ${code.slice(1)} for ${l.qname}`));
    }
    // Follow the chain inside this answer (RFC 1034 section 5.3.3 step 4).
    let name = l.qname;
    for (;;) {
      const here = m.answers.filter((r) => canonicalName(r.name) === name);
      for (const r of here) l.minTtl = Math.min(l.minTtl, r.ttl);
      const data = here.filter((r) => recordType(r) === l.type);
      if (data.length > 0) {
        const ttl = Math.min(l.minTtl, this.maxTtl);
        const result: LookupResult = { name: l.name, canonicalName: name, type: l.type, records: data, cnames: [...l.cnames], ttl, fromCache: false };
        this.store(l.name, l.type, { ok: true, result }, ttl, now);
        return this.finish(l, { ok: true, result });
      }
      const cname = here.find((r) => r.type === 'CNAME');
      if (!cname || cname.type !== 'CNAME') break;
      const target = canonicalName(cname.target);
      if (l.cnames.length >= this.maxChain || l.cnames.includes(target) || target === l.name) {
        return this.finish(l, fail('ELOOP', `the CNAME chain from ${l.name} is longer than ${this.maxChain} or loops`));
      }
      l.cnames.push(target);
      name = target;
    }
    if (name !== l.qname) {
      // The answer ended in a CNAME whose target it did not answer: ask for the target.
      l.qname = name;
      this.closeUdp(l);
      this.dropTcp(l);
      l.server = 0;
      l.tries = 0;
      return this.sendUdp(l, now);
    }
    const out = fail('ENODATA', `${l.name} has no ${typeName(l.type)} record`);
    this.cacheNegative(l, m, out, now);
    this.finish(l, out);
  }

  private finish(l: Lookup, outcome: LookupOutcome): void {
    if (!this.lookups.delete(l.key)) return;
    this.closeUdp(l);
    this.dropTcp(l);
    this.count(outcome.ok ? 'ok' : 'error.' + outcome.error.code);
    this.io.done(l.key, outcome);
  }

  private closeUdp(l: Lookup): void {
    for (const a of l.udp) {
      this.byPort.delete(a.port);
      this.io.closeUdp(a.port);
    }
    l.udp = [];
  }

  private dropTcp(l: Lookup): void {
    if (!l.tcp) return;
    this.byConn.delete(l.tcp.conn);
    this.io.closeTcp(l.tcp.conn);
    l.tcp = undefined;
  }

  // ───────────────────────── cache ─────────────────────────

  private fromCache(name: string, type: number, now: number): LookupOutcome | undefined {
    const key = `${type}/${name}`;
    const e = this.cache.get(key);
    if (!e) return undefined;
    if (now >= e.expires) {
      this.cache.delete(key);
      return undefined;
    }
    // Least recently used goes first: re-insert on every hit.
    this.cache.delete(key);
    this.cache.set(key, e);
    if (!e.outcome.ok) return e.outcome;
    const left = Math.max(0, Math.floor((e.expires - now) / 1000));
    return { ok: true, result: { ...e.outcome.result, ttl: left, fromCache: true } };
  }

  private store(name: string, type: number, outcome: LookupOutcome, ttl: number, now: number): void {
    if (ttl <= 0 || this.cacheSize <= 0) return;
    const key = `${type}/${name}`;
    this.cache.delete(key);
    this.cache.set(key, { expires: now + ttl * 1000, outcome });
    while (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
  }

  /** RFC 2308 section 5: cache a negative answer for min(SOA TTL, SOA MINIMUM), if it has an SOA. */
  private cacheNegative(l: Lookup, m: DnsMessage, outcome: LookupOutcome, now: number): void {
    const soa = m.authorities.find((r) => r.type === 'SOA');
    if (!soa || soa.type !== 'SOA') return;
    this.store(l.name, l.type, outcome, Math.min(soa.ttl, soa.minimum, NEGATIVE_TTL_CAP, this.maxTtl), now);
  }

  private ignore(reason: string, localPort?: number): void {
    this.count('ignored.' + reason);
    this.io.trace?.(localPort === undefined ? { kind: 'ignored', reason } : { kind: 'ignored', reason, localPort });
  }

  private count(k: string): void {
    this.stats[k] = (this.stats[k] ?? 0) + 1;
  }
}

function fail(code: ResolverErrorCode, message: string): LookupOutcome {
  return { ok: false, error: { code, message } };
}

function fmt(s: ResolverServer): string {
  return `${s.address}:${s.port}`;
}

export { TYPE };
