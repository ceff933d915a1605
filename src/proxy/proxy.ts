/**
 * The reverse proxy: one request in, one upstream server chosen by the block's balancer, the
 * request streamed to it over a connection from netstack's own TCP (an active open, or one
 * from the keep-alive pool), the response streamed back. Runtime glue, like src/http/server.ts:
 * it owns timers (through the Clock) and sockets; the rules live in the pure parts
 * (balance/, config.ts, ../http/response-parser.ts).
 *
 * What happens on failure, as nginx does it:
 *  - connect error, connect/read timeout, an invalid response head, or a status named in
 *    proxy_next_upstream: the attempt failed; the server's failure counts toward max_fails
 *    (404 does not); the request goes to the next server if proxy_next_upstream allows it
 *    and it is safe: never once a non-idempotent request (POST, PATCH, ...) was sent, unless
 *    `non_idempotent` is listed, and never once any request body was read (the body streams
 *    through and is not kept, so it cannot be sent again);
 *  - no server left: 504 if the last failure was a timeout, else 502;
 *  - a failure after the response head went to the client: the client connection is cut
 *    (the response's framing is left incomplete, so the client sees the truncation).
 *
 * Memory per request is bounded both ways: the request body is pulled from the client only
 * as fast as the upstream socket takes it, and the upstream socket is paused while the
 * client is slower than the upstream (at most READ_HIGH_WATER bytes parsed ahead).
 */
import type { Logger } from 'pino';
import type { Clock, ClockTimer } from '../runtime/clock.js';
import type { HttpRequest, HttpResponse } from '../http/server.js';
import { splitTarget } from '../http/parser.js';
import { ResponseParser } from '../http/response-parser.js';
import type { ResponseEvent, ResponseHead } from '../http/response-parser.js';
import { parseIpv4 } from '../ip/addr.js';
import type { Peer } from './balance/peer.js';
import type { LocationConfig, NextUpstreamWhen, ProxyPassConfig } from './config.js';
import type { UpstreamConn, UpstreamGroup, UpstreamSocket } from './upstream.js';

/** Opens a connection to host:port; it emits 'connect', or 'error'. */
export type Connector = (host: string, port: number) => UpstreamSocket;

/** Parsed-but-unsent response bytes beyond this pause the upstream socket. */
const READ_HIGH_WATER = 64 * 1024;
/** How long to wait for a server that announced its close to actually close, before we do. */
const CLOSE_WAIT_MS = 2000;

/** RFC 9110 §7.6.1: connection-specific fields, never forwarded (plus those named in Connection). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
/** Request fields we write ourselves. Expect was answered by our server already. */
const REWRITTEN_REQUEST = new Set(['host', 'content-length', 'x-real-ip', 'x-forwarded-for', 'via', 'expect']);
/** Response fields not passed: framing is ours; Date and Server as nginx (proxy_hide_header's defaults). */
const HIDDEN_RESPONSE = new Set(['content-length', 'date', 'server', 'via']);
/** RFC 9110 §9.2.2. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export interface ProxyLogInfo {
  upstream: string;
  tries: number;
}

type Failure = Exclude<NextUpstreamWhen, 'non_idempotent'>;

/** What one attempt produced. */
type Attempt =
  | { kind: 'failed'; why: Failure }
  | { kind: 'response'; head: ResponseHead; conn: UpstreamConn; reader: ResponseReader; sending: Promise<boolean> };

interface Exchange {
  req: HttpRequest;
  res: HttpResponse;
  pass: ProxyPassConfig;
  group: UpstreamGroup;
  head: Buffer;
  bodyMode: 'none' | 'length' | 'chunked';
  /** A byte of the request went to some upstream. */
  requestSent: boolean;
  /** Some of the request body was read from the client: it cannot be sent again. */
  bodyStarted: boolean;
}

export class Proxy {
  readonly stats: Record<string, number> = Object.create(null) as Record<string, number>;

  constructor(
    readonly groups: Map<string, UpstreamGroup>,
    private readonly connect: Connector,
    private readonly clock: Clock,
    private readonly logger?: Logger,
  ) {}

  private count(name: string): void {
    this.stats[name] = (this.stats[name] ?? 0) + 1;
  }

  async handle(req: HttpRequest, res: HttpResponse, loc: LocationConfig, info: ProxyLogInfo): Promise<void> {
    const pass = loc.proxy!;
    const group = this.groups.get(pass.upstream)!;
    const x: Exchange = { req, res, pass, group, ...requestHead(req, loc, pass, group.config.keepalive > 0), requestSent: false, bodyStarted: false };
    const b = group.balancer;
    const picker = b.start({ clientAddr: parseIpv4(req.remoteAddress ?? '') ?? 0, key: hashKey(group.config.hashKey, req) });
    const maxTries = pass.nextUpstreamTries > 0 ? Math.min(pass.nextUpstreamTries, b.maxTries) : b.maxTries;
    let last: Failure | undefined;
    for (let tries = 1; tries <= maxTries; tries++) {
      const peer = picker.next(this.clock.now());
      if (!peer) break;
      info.upstream = peer.name;
      info.tries = tries;
      const counters = group.counters.get(peer)!;
      counters.requests++;
      const a = await this.attempt(x, peer);
      const retryable = tries < maxTries && this.safeToRetry(x);
      if (a.kind === 'response') {
        const when = `http_${a.head.status}` as Failure;
        if (pass.nextUpstream.has(when) && retryable) {
          // nginx: 404 moves on without counting against the server; the 5xx and 429 count.
          const failed = a.head.status !== 404;
          if (failed) counters.failures++;
          b.release(peer, failed, this.clock.now());
          a.reader.detach();
          a.conn.socket.destroy();
          this.count(`next_upstream_${when}`);
          last = when;
          continue;
        }
        counters.responses[`${Math.floor(a.head.status / 100)}xx`] = (counters.responses[`${Math.floor(a.head.status / 100)}xx`] ?? 0) + 1;
        return this.stream(x, peer, a);
      }
      counters.failures++;
      b.release(peer, true, this.clock.now());
      last = a.why;
      this.count(`upstream_${a.why}`);
      if (!pass.nextUpstream.has(a.why) || !retryable) break;
      this.count('next_upstream');
    }
    if (last === undefined) this.count('no_live_upstreams');
    const status = last === 'timeout' ? 504 : 502;
    res.status = status;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end(`${status} ${status === 504 ? 'Gateway Timeout' : 'Bad Gateway'}: ${last === undefined ? 'no live upstreams' : `upstream ${last}`}\n`);
  }

  /** Another server may get this request (nginx's non-idempotent rule, plus: a streamed body is gone). */
  private safeToRetry(x: Exchange): boolean {
    if (x.bodyStarted) return false;
    if (!x.requestSent) return true;
    return IDEMPOTENT.has(x.req.method) || x.pass.nextUpstream.has('non_idempotent');
  }

  /** Connect (or reuse), send the request, and wait for the response head. */
  private async attempt(x: Exchange, peer: Peer): Promise<Attempt> {
    let conn = x.group.takeIdle(peer);
    if (!conn) {
      try {
        conn = await this.open(peer, x.pass.connectTimeoutMs);
        x.group.poolStats.opened++;
      } catch (e) {
        return { kind: 'failed', why: (e as { timeout?: boolean }).timeout ? 'timeout' : 'error' };
      }
    }
    conn.requests++;
    const parser = new ResponseParser(x.req.method);
    const reader = new ResponseReader(conn.socket, parser, this.clock);
    const sending = this.send(x, conn.socket);
    for (let guard = 0; guard < 100; guard++) {
      const ev = await reader.next(x.pass.readTimeoutMs);
      if (ev.type === 'informational') continue;
      if (ev.type === 'head') return { kind: 'response', head: ev.head, conn, reader, sending };
      reader.detach();
      conn.socket.destroy();
      if (ev.type === 'timeout') return { kind: 'failed', why: 'timeout' };
      if (ev.type === 'error' && ev.reason !== 'closed-before-response') {
        this.logger?.warn({ upstream: peer.name, reason: ev.reason }, 'proxy: upstream sent an invalid response');
        return { kind: 'failed', why: 'invalid_header' };
      }
      return { kind: 'failed', why: 'error' };
    }
    reader.detach();
    conn.socket.destroy();
    return { kind: 'failed', why: 'invalid_header' };
  }

  /** Resolves with a connected socket; rejects with the error, or { timeout: true }. */
  private open(peer: Peer, timeoutMs: number): Promise<UpstreamConn> {
    return new Promise((resolve, reject) => {
      const socket = this.connect(peer.host, peer.port);
      // Errors are also seen as 'close' by whoever holds the socket; never let one go unheard.
      socket.on('error', () => {});
      const done = () => {
        timer.clear();
        socket.off('connect', onConnect);
        socket.off('error', onError);
      };
      const onConnect = () => {
        done();
        socket.setNoDelay?.(true);
        resolve({ socket, peer, requests: 0 });
      };
      const onError = (err: Error) => {
        done();
        reject(err);
      };
      const timer = this.clock.timer(() => {
        done();
        socket.destroy();
        reject({ timeout: true });
      });
      timer.set(this.clock.now() + timeoutMs);
      socket.once('connect', onConnect);
      socket.once('error', onError);
    });
  }

  /** Write the request head and stream the body; resolves true when all of it was queued. */
  private async send(x: Exchange, socket: UpstreamSocket): Promise<boolean> {
    try {
      x.requestSent = true;
      if (!socket.write(x.head)) await this.drained(socket, x.pass.sendTimeoutMs);
      if (x.bodyMode === 'none') return true;
      x.bodyStarted = true;
      for await (const chunk of x.req.body) {
        if (chunk.length === 0) continue;
        let ok: boolean;
        if (x.bodyMode === 'chunked') {
          socket.cork();
          socket.write(Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'));
          socket.write(chunk);
          ok = socket.write(CRLF);
          socket.uncork();
        } else ok = socket.write(chunk);
        if (!ok) await this.drained(socket, x.pass.sendTimeoutMs);
      }
      if (x.bodyMode === 'chunked') socket.write(LAST_CHUNK);
      return true;
    } catch {
      // The client or the upstream went away, or the send timed out: the reader sees the rest.
      if (!socket.destroyed) socket.destroy();
      return false;
    }
  }

  private drained(socket: UpstreamSocket, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = () => {
        timer.clear();
        socket.off('drain', onDrain);
        socket.off('close', onClose);
      };
      const onDrain = () => {
        done();
        resolve();
      };
      const onClose = () => {
        done();
        reject(new Error('upstream connection closed'));
      };
      const timer = this.clock.timer(() => {
        done();
        reject(new Error('proxy_send_timeout'));
      });
      timer.set(this.clock.now() + timeoutMs);
      socket.on('drain', onDrain);
      socket.on('close', onClose);
    });
  }

  /** Pass the response to the client; then pool, close or abort the upstream connection. */
  private async stream(x: Exchange, peer: Peer, a: Extract<Attempt, { kind: 'response' }>): Promise<void> {
    const { head, conn, reader } = a;
    const res = x.res;
    let applied = false;
    const applyHead = () => {
      applied = true;
      res.status = head.status;
      copyResponseFields(head, res);
      if (head.contentLength !== null) res.setHeader('Content-Length', head.contentLength);
    };
    let failure: string | undefined;
    let clientGone = false;
    try {
      for (let ev: ResponseEvent | { type: 'timeout' | 'broken' } = await reader.next(x.pass.readTimeoutMs); ; ev = await reader.next(x.pass.readTimeoutMs)) {
        if (ev.type === 'body') {
          if (!applied) applyHead();
          try {
            await res.write(ev.data);
          } catch {
            clientGone = true;
            break;
          }
        } else if (ev.type === 'end') {
          if (!applied) applyHead();
          break;
        } else if (ev.type !== 'informational' && ev.type !== 'head') {
          failure = ev.type === 'error' ? ev.reason : ev.type;
          break;
        }
      }
    } finally {
      reader.detach();
    }
    // A break in the body is not counted against the server (nginx finalizes such a request as a success for the balancer).
    x.group.balancer.release(peer, false, this.clock.now());
    const sentAll = await Promise.race([a.sending, Promise.resolve(false)]);
    if (failure || clientGone) {
      conn.socket.destroy();
      if (failure) this.count(`upstream_broken_${failure}`);
      if (clientGone) return;
      if (!applied) {
        // Nothing reached the client yet: an honest 502 (or 504).
        res.status = failure === 'timeout' ? 504 : 502;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end(`${res.status} ${res.status === 504 ? 'Gateway Timeout' : 'Bad Gateway'}: upstream ${failure}\n`);
        return;
      }
      // The head is out: only cutting the connection tells the client the body is incomplete.
      throw Object.assign(new Error(`upstream ${peer.name} broke off the response: ${failure}`), { code: 'EPROXY' });
    }
    res.end();
    if (head.keepAlive && sentAll && !reader.extra && x.group.putIdle(conn)) return;
    this.retire(conn, head.keepAlive);
  }

  /**
   * Close a connection after a complete exchange. When the server announced its close, let it
   * close first (its side then holds the TIME-WAIT, and our port is free at once); otherwise we
   * close, and our side holds it.
   */
  private retire(conn: UpstreamConn, serverKeepsOpen: boolean): void {
    const socket = conn.socket;
    if (serverKeepsOpen) {
      socket.end();
      socket.resume();
      return;
    }
    const timer = this.clock.timer(() => socket.end());
    timer.set(this.clock.now() + CLOSE_WAIT_MS);
    socket.on('data', () => {});
    socket.once('close', () => timer.clear());
    // allowHalfOpen is off: reading the server's FIN ends our side too (a passive close).
    socket.resume();
  }
}

/**
 * Reads one response from an upstream socket through the parser, with flow control: the
 * socket is paused while more than READ_HIGH_WATER bytes wait to be taken.
 */
class ResponseReader {
  private wake: (() => void) | undefined;
  private ended = false;
  private broken = false;
  private readonly timer: ClockTimer;
  private timedOut = false;

  constructor(
    private readonly socket: UpstreamSocket,
    private readonly parser: ResponseParser,
    private readonly clock: Clock,
  ) {
    this.timer = clock.timer(() => {
      this.timedOut = true;
      this.notify();
    });
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.resume();
  }

  get extra(): boolean {
    return this.parser.extra;
  }

  private readonly onData = (chunk: Buffer) => {
    this.parser.feed(chunk);
    if (this.parser.bufferedBytes >= READ_HIGH_WATER) this.socket.pause();
    this.notify();
  };

  private readonly onEnd = () => {
    this.ended = true;
    this.parser.end();
    this.notify();
  };

  private readonly onClose = () => {
    // Closed without a FIN (reset, or destroyed): what is missing stays missing.
    if (!this.ended) this.broken = true;
    this.notify();
  };

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  detach(): void {
    this.timer.clear();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onClose);
    this.notify();
  }

  /** The next parse event; 'timeout' after `timeoutMs` without one; 'broken' if the connection died. */
  async next(timeoutMs: number): Promise<ResponseEvent | { type: 'timeout' | 'broken' }> {
    // proxy_read_timeout: between two successive reads, not for the whole response.
    this.timer.set(this.clock.now() + timeoutMs);
    this.timedOut = false;
    for (;;) {
      const ev = this.parser.next();
      if (ev) {
        if (this.socket.isPaused() && this.parser.bufferedBytes < READ_HIGH_WATER) this.socket.resume();
        return ev;
      }
      if (this.broken) return { type: 'broken' };
      if (this.timedOut) return { type: 'timeout' };
      if (this.socket.isPaused()) this.socket.resume();
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

/** The request as it goes upstream: request line, forwarded fields, and ours (RFC 9110 §7.6). */
function requestHead(req: HttpRequest, loc: LocationConfig, pass: ProxyPassConfig, keepAlive: boolean): { head: Buffer; bodyMode: Exchange['bodyMode'] } {
  const { path, query } = splitTarget(req.target);
  let p = path;
  // proxy_pass with a URI replaces the part of the path the location matched (nginx).
  if (pass.uri !== undefined) p = pass.uri + path.slice(Math.min(loc.path.length, path.length));
  const target = query || req.target.includes('?') ? `${p}?${query}` : p;
  const named = connectionTokens(req.headers.get('connection'));
  const host = pass.proxyHost.endsWith(':80') ? pass.proxyHost.slice(0, -3) : pass.proxyHost;
  let text = `${req.method} ${target} HTTP/1.1\r\nHost: ${host}\r\n`;
  for (const [name, value] of req.fields) {
    if (HOP_BY_HOP.has(name) || REWRITTEN_REQUEST.has(name) || named.has(name)) continue;
    text += `${name}: ${value}\r\n`;
  }
  const client = req.remoteAddress ?? '';
  const xff = req.headers.get('x-forwarded-for');
  text += `X-Real-IP: ${client}\r\nX-Forwarded-For: ${xff ? `${xff}, ${client}` : client}\r\n`;
  const via = req.headers.get('via');
  text += `Via: ${via ? `${via}, ` : ''}1.${req.version === '1.0' ? '0' : '1'} netstack\r\n`;
  let bodyMode: Exchange['bodyMode'] = 'none';
  if (req.contentLength !== null) {
    text += `Content-Length: ${req.contentLength}\r\n`;
    if (req.contentLength > 0) bodyMode = 'length';
  } else if (req.headers.has('transfer-encoding')) {
    text += 'Transfer-Encoding: chunked\r\n';
    bodyMode = 'chunked';
  }
  if (!keepAlive) text += 'Connection: close\r\n';
  return { head: Buffer.from(text + '\r\n', 'latin1'), bodyMode };
}

function connectionTokens(value: string | undefined): Set<string> {
  const out = new Set<string>();
  for (const t of (value ?? '').split(',')) {
    const name = t.trim().toLowerCase();
    if (name) out.add(name);
  }
  return out;
}

function copyResponseFields(head: ResponseHead, res: HttpResponse): void {
  const named = connectionTokens(head.headers.get('connection'));
  for (const [name, value] of head.fields) {
    if (HOP_BY_HOP.has(name) || HIDDEN_RESPONSE.has(name) || named.has(name)) continue;
    res.appendHeader(name, value);
  }
  const via = head.headers.get('via');
  res.setHeader('Via', `${via ? `${via}, ` : ''}1.${head.version === '1.0' ? '0' : '1'} netstack`);
}

/** The hash key with its variables filled in ($request_uri, $uri, $args, $remote_addr, $host, ...). */
export function hashKey(template: string, req: HttpRequest): string {
  if (template === '') return '';
  const { path, query } = splitTarget(req.target);
  const host = (req.headers.get('host') ?? '').replace(/:\d+$/, '').toLowerCase();
  const vars: Record<string, string> = {
    request_uri: query || req.target.includes('?') ? `${path}?${query}` : path,
    uri: path,
    args: query,
    query_string: query,
    remote_addr: req.remoteAddress ?? '',
    host,
    request_method: req.method,
  };
  return template.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_m, name: string) => vars[name] ?? '');
}

const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
