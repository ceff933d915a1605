/**
 * HTTP/1.1 server over any Node `stream.Duplex` that behaves like `net.Socket`
 * (netstack's own TcpSocket, or a kernel socket from `net`).
 *
 * This file is the glue between the pure parser (parser.ts) and a socket: it reads
 * bytes, pulls parse events, runs the handler for one request at a time, frames the
 * response, and decides when the connection ends. It owns the timers (through the
 * project's Clock), so it is not sans-I/O; the protocol rules live in the parser.
 *
 * Per connection, requests are handled strictly one after another (RFC 9112 §9.3.2:
 * responses to pipelined requests go out in request order). Input for later requests
 * waits in the parser; once that backlog is large the socket is paused, so TCP's window
 * closes and the client slows down.
 *
 * Responses stream: `res.write()` returns a promise that waits for 'drain' whenever the
 * socket's buffer is full, so a 10 GiB body never sits in memory.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { RealClock, type Clock, type ClockTimer } from '../runtime/clock.js';
import { DeadlineHeap } from '../runtime/deadline-heap.js';
import { LinkedSet, SetLink } from '../runtime/linked-set.js';
import {
  BAD_VALUE_CHAR,
  DEFAULT_LIMITS,
  RequestParser,
  TOKEN,
  splitTarget,
  type Field,
  type HttpVersion,
  type ParserLimits,
  type RequestHead,
} from './parser.js';

export interface HttpRequest {
  readonly method: string;
  /** The request-target exactly as received. */
  readonly target: string;
  /** Path of the target, still percent-encoded (`/a%20b`). */
  readonly path: string;
  /** Query of the target without the `?`; '' if none. */
  readonly query: string;
  readonly version: HttpVersion;
  /** Fields by lower-case name (repeats joined with ", "). */
  readonly headers: ReadonlyMap<string, string>;
  /** Every field line as received, in order (names lower-cased). */
  readonly fields: readonly Field[];
  /** Body length announced by Content-Length; null for chunked or no body. */
  readonly contentLength: number | null;
  /** Body bytes as they arrive. Consume it at your pace: the client is slowed down to match. */
  readonly body: AsyncIterable<Uint8Array>;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
}

export interface HttpResponse {
  /** Status code to send; 200 unless changed before the first write. */
  status: number;
  /** Set a header field (before the first write). Content-Length set here fixes the framing. */
  setHeader(name: string, value: string | number): void;
  /** Add a field line even if one of that name is set (Set-Cookie must not be joined). */
  appendHeader(name: string, value: string): void;
  readonly headersSent: boolean;
  /**
   * Send body bytes. Resolves when the socket can take more (backpressure); rejects if
   * the connection is gone, so a streaming loop stops.
   */
  write(chunk: Uint8Array | string): Promise<void>;
  /** Finish the response, optionally with a last chunk. Further calls do nothing. */
  end(chunk?: Uint8Array | string): void;
}

/**
 * What the server runs per request. When the handler returns (or its promise
 * settles) the response is ended if it was not already; a throw becomes a 500 if
 * nothing was sent yet.
 */
export interface Handler {
  (req: HttpRequest, res: HttpResponse): void | Promise<void>;
  /**
   * Largest request body to accept for this request (413 beyond, RFC 9110 §15.5.14),
   * decided from the head before any body byte is read. Default: limits.maxBodyBytes.
   */
  maxBodyBytes?: (head: RequestHead) => number;
}

export interface HttpServerOptions {
  handler: Handler;
  limits?: Partial<ParserLimits>;
  /** Close a keep-alive connection after this long without a request (ms). Node's default: 5 s. */
  idleTimeoutMs?: number;
  /** A request head must be complete this long after its first byte, else 408 and close (ms). */
  headersTimeoutMs?: number;
  /** During a request, abort the connection if neither side makes progress for this long (ms). */
  sendTimeoutMs?: number;
  /** After our FIN, wait this long for the client to close before destroying the socket (ms). */
  lingerMs?: number;
  /** Requests served on one connection; the last response carries `Connection: close`. */
  maxRequestsPerConnection?: number;
  /** Value of the `Server` header field. */
  serverName?: string;
  /** Time source for timeouts (RealClock by default; a VirtualClock in simulations). */
  clock?: Clock;
  logger?: Logger;
}

/** The socket shape the server needs: a Duplex with net.Socket's address fields. */
export type ServerSocket = Duplex & {
  remoteAddress?: string;
  remotePort?: number;
  setNoDelay?(noDelay?: boolean): unknown;
};

/** What a connection's transport tells the server (the events of a net.Socket it uses). */
export interface ByteStreamEvents {
  data(chunk: Uint8Array): void;
  end(): void;
  drain(): void;
  finish(): void;
  error(err: Error & { code?: string }): void;
  close(hadError: boolean): void;
}

/**
 * A byte stream without Node's stream machinery: netstack's TcpStream (src/tcp/stream.ts), the
 * fast path `handleStream` serves. The server's behaviour on the wire is the same as over a
 * Duplex: the same bytes, the same backpressure (pause closes the TCP window; write() says when
 * to wait for `drain`), the same lingering close.
 */
export interface ByteStream {
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly writableEnded: boolean;
  /** write() returned false and `drain` has not come yet. */
  readonly needDrain: boolean;
  start(events: ByteStreamEvents): void;
  write(data: Uint8Array): boolean;
  end(): void;
  destroy(): void;
  pause(): void;
  resume(): void;
  isPaused(): boolean;
  setNoDelay?(noDelay?: boolean): unknown;
}

/** A Duplex (net.Socket, TcpSocket) seen as a ByteStream: the general path of `handleConnection`. */
class DuplexStream implements ByteStream {
  constructor(private readonly socket: ServerSocket) {}

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }
  get writableEnded(): boolean {
    return this.socket.writableEnded;
  }
  get needDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  start(ev: ByteStreamEvents): void {
    const socket = this.socket;
    socket.on('data', (chunk: Buffer) => ev.data(chunk));
    socket.on('end', () => ev.end());
    socket.on('drain', () => ev.drain());
    socket.on('finish', () => ev.finish());
    socket.on('error', (err: Error) => ev.error(err));
    socket.on('close', (hadError: boolean) => ev.close(hadError));
  }

  write(data: Uint8Array): boolean {
    return this.socket.write(data);
  }
  end(): void {
    this.socket.end();
  }
  destroy(): void {
    this.socket.destroy();
  }
  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }
  isPaused(): boolean {
    return this.socket.isPaused();
  }
  setNoDelay(noDelay?: boolean): void {
    this.socket.setNoDelay?.(noDelay);
  }
  /** Several buffers in one go (one writev for net.Socket); false when the socket wants a drain. */
  writeAll(parts: Uint8Array[]): boolean {
    this.socket.cork();
    for (const p of parts) this.socket.write(p);
    // uncork flushes synchronously; the return value reflects the buffer after all parts.
    this.socket.uncork();
    return !this.socket.writableNeedDrain;
  }
}

/** Reason phrases for the status codes this server is likely to send (RFC 9110 §15). */
const REASONS: Record<number, string> = {
  100: 'Continue',
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  206: 'Partial Content',
  301: 'Moved Permanently',
  302: 'Found',
  304: 'Not Modified',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  411: 'Length Required',
  413: 'Content Too Large',
  414: 'URI Too Long',
  417: 'Expectation Failed',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

/** Parsed-but-unhandled input beyond this pauses the socket. */
const INPUT_HIGH_WATER = 64 * 1024;
/** Body bytes queued for a handler that is not reading beyond this stop the parser. */
const BODY_HIGH_WATER = 64 * 1024;
/** After a response, an unread request body this small is read and dropped; a bigger one closes the connection. */
const MAX_DRAIN_BYTES = 64 * 1024;
/** Head and body under this size go out in one write (one segment); larger bodies are written separately. */
const COALESCE_BYTES = 16 * 1024;


export class HttpServer {
  readonly handler: Handler;
  readonly limits: ParserLimits;
  readonly idleTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly sendTimeoutMs: number;
  readonly lingerMs: number;
  readonly maxRequestsPerConnection: number;
  readonly serverName: string;
  readonly clock: Clock;
  readonly logger: Logger | undefined;
  /** Counters by name (requests, responses by class, parse errors by reason, timeouts). */
  readonly stats: Record<string, number> = Object.create(null) as Record<string, number>;
  /** Open connections, oldest first (a LinkedSet, not a Set: see runtime/linked-set.ts). */
  private readonly connections = new LinkedSet<Connection>();
  private closed = false;
  /** Every connection's next deadline, on one timer. */
  readonly deadlines: DeadlineQueue;

  constructor(opts: HttpServerOptions) {
    this.handler = opts.handler;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 5_000;
    this.headersTimeoutMs = opts.headersTimeoutMs ?? 60_000;
    this.sendTimeoutMs = opts.sendTimeoutMs ?? 60_000;
    this.lingerMs = opts.lingerMs ?? 5_000;
    this.maxRequestsPerConnection = opts.maxRequestsPerConnection ?? 1000;
    this.serverName = opts.serverName ?? 'netstack';
    this.clock = opts.clock ?? new RealClock();
    this.logger = opts.logger;
    this.deadlines = new DeadlineQueue(this.clock);
  }

  /** Serve HTTP on a freshly accepted socket. It should allow half-open (`allowHalfOpen: true`). */
  handleConnection(socket: ServerSocket): void {
    this.handleStream(new DuplexStream(socket));
  }

  /** Serve HTTP on a byte stream: netstack's TcpStream, the fast path of the built-in server. */
  handleStream(stream: ByteStream): void {
    this.count('connections');
    const conn = new Connection(this, stream);
    this.connections.add(conn.link);
    conn.start();
    if (this.closed) conn.shutdown();
  }

  /** The connection closed. */
  forget(conn: Connection): void {
    this.connections.delete(conn.link);
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.connections.size;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Stop serving: idle connections get a FIN now, busy ones after their current
   * response (which carries `Connection: close`). The listener is the caller's.
   */
  close(): void {
    this.closed = true;
    for (const conn of this.connections) conn.shutdown();
  }

  count(name: string, n = 1): void {
    this.stats[name] = (this.stats[name] ?? 0) + n;
  }
}

/**
 * The deadlines of all of a server's connections on one clock timer: a binary heap of
 * (time, connection), instead of a timer (and a setTimeout) per connection. A connection
 * re-arms only when its deadline moves earlier (its entry moves up); one whose deadline moved
 * later is looked at early and re-arms (Connection.onDeadline). A closed connection is taken
 * out at once, so the queue never keeps one alive.
 */
class DeadlineQueue {
  private heap = new DeadlineHeap<Connection>();
  private armed = Infinity;
  private readonly timer: ClockTimer;

  constructor(private readonly clock: Clock) {
    this.timer = clock.timer(() => this.fire());
  }

  get size(): number {
    return this.heap.size;
  }

  schedule(conn: Connection, at: number): void {
    this.heap.set(at, conn);
    if (at < this.armed) {
      this.armed = at;
      this.timer.set(at);
    }
  }

  remove(conn: Connection): void {
    this.heap.remove(conn);
  }

  private fire(): void {
    this.armed = Infinity;
    const now = this.clock.now();
    const h = this.heap;
    // Bounded: each round removes one entry, and a connection re-arms only for a later time.
    while (h.size > 0 && h.nextAt <= now) {
      const at = h.nextAt;
      h.pop().onDeadline(at);
    }
    if (h.nextAt < this.armed) {
      this.armed = h.nextAt;
      this.timer.set(this.armed);
    }
  }
}

/** The request body as an async iterable fed by the connection, with a bounded queue. */
class BodyStream implements AsyncIterable<Uint8Array> {
  private queue: Uint8Array[] = [];
  queuedBytes = 0;
  private ended = false;
  private error: Error | undefined;
  private lazyError: (() => Error) | undefined;
  private waiter: { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: Error) => void } | undefined;

  /** `conn.bodyConsumed()` is called whenever the consumer takes a chunk, so the connection can read on. */
  constructor(private readonly conn: { bodyConsumed(): void }) {}

  private onConsumed(): void {
    this.conn.bodyConsumed();
  }

  push(data: Uint8Array): void {
    if (this.ended || this.error || this.lazyError) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: data, done: false });
      this.onConsumed();
      return;
    }
    this.queue.push(data);
    this.queuedBytes += data.length;
  }

  end(): void {
    this.ended = true;
    if (this.waiter && this.queue.length === 0) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  }

  fail(err: Error | (() => Error)): void {
    if (this.ended) return;
    // A factory: most bodies that fail are never read again, so the Error is made only if one is.
    if (typeof err === 'function') {
      if (!this.waiter) {
        this.lazyError = err;
        this.queue = [];
        this.queuedBytes = 0;
        return;
      }
      err = err();
    }
    this.error = err;
    this.queue = [];
    this.queuedBytes = 0;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(err);
    }
  }

  /** Drop what is queued and everything still to come (the handler did not want it). */
  discard(): void {
    this.queue = [];
    this.queuedBytes = 0;
    this.ended = true;
    this.waiter?.resolve({ value: undefined, done: true });
    this.waiter = undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => {
        const data = this.queue.shift();
        if (data) {
          this.queuedBytes -= data.length;
          this.onConsumed();
          return Promise.resolve({ value: data, done: false });
        }
        if (this.lazyError) {
          this.error = this.lazyError();
          this.lazyError = undefined;
        }
        if (this.error) return Promise.reject(this.error);
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waiter = { resolve, reject };
        });
      },
    };
  }
}

/** One request and its response. */
interface Exchange {
  head: RequestHead;
  req: HttpRequest;
  res: ServerResponse;
  body: BodyStream;
  /** The parser has delivered the whole request body (or it failed). */
  bodyComplete: boolean;
  /** Input for this request's body is being read and dropped after the response. */
  discarding: boolean;
  /** Close the connection after this response. */
  closeAfter: boolean;
}

class Connection implements ByteStreamEvents {
  private parser: RequestParser;
  private exchange: Exchange | null = null;
  private requests = 0;
  /** We sent (or queued) our FIN: input is read and dropped until the peer closes (lingering close). */
  private closing = false;
  /** Stop after the current exchange (server closing). */
  private stopAfterCurrent = false;
  private peerEnded = false;
  private closed = false;
  private pumping = false;
  private writeFinishedAt = Infinity;
  // Timer bookkeeping: the server's deadline queue, re-armed lazily (see deadline()).
  private armedAt = Infinity;
  /** Our place in the deadline queue's heap (runtime/deadline-heap.ts), -1 when not filed. */
  heapIndex = -1;
  /** Our membership in the server's open connections. */
  readonly link: SetLink<Connection> = new SetLink<Connection>(this);
  private lastProgress: number;
  private headStartedAt: number;
  private drainWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  constructor(
    private readonly server: HttpServer,
    private readonly socket: ByteStream & { writeAll?(parts: Uint8Array[]): boolean },
  ) {
    this.parser = new RequestParser(server.limits);
    const now = server.clock.now();
    this.lastProgress = now;
    this.headStartedAt = now;
  }

  start(): void {
    // Our writes are already batched per response: Nagle would only add delay.
    this.socket.setNoDelay?.(true);
    this.socket.start(this);
    this.armTimer();
  }

  // --- Transport events (ByteStreamEvents) ---

  data(chunk: Uint8Array): void {
    this.onData(chunk);
  }

  end(): void {
    this.onPeerEnd();
  }

  drain(): void {
    this.onDrain();
  }

  finish(): void {
    this.writeFinishedAt = this.server.clock.now();
    this.armTimer();
  }

  error(err: Error & { code?: string }): void {
    this.server.count(`socket_error_${err.code ?? 'other'}`);
    this.server.logger?.debug({ err }, 'http: socket error');
  }

  close(): void {
    this.onClose();
    this.server.forget(this);
  }

  // --- Input ---

  private onData(chunk: Uint8Array): void {
    this.lastProgress = this.server.clock.now();
    if (this.closing) return; // lingering close: read and drop
    if (this.exchange === null && this.parser.idle) this.headStartedAt = this.lastProgress;
    this.parser.feed(chunk);
    this.pump();
  }

  /**
   * Pull parse events while the current exchange can take them. Stops at the end of a
   * request (its response must finish first), when the handler's body queue is full,
   * or when input runs out.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    let starved = false;
    try {
      while (!this.closing && !this.closed) {
        const ex = this.exchange;
        if (ex && ex.bodyComplete) break;
        // The next pipelined request waits while earlier responses fill the socket (its
        // input then piles up and pauses the socket): 'drain' pumps again.
        if (!ex && this.socket.needDrain) break;
        if (ex && !ex.discarding && ex.body.queuedBytes >= BODY_HIGH_WATER) break;
        const ev = this.parser.next();
        if (!ev) {
          starved = true;
          break;
        }
        if (ev.type === 'head') this.startExchange(ev.head);
        else if (ev.type === 'body') ex!.body.push(ev.data);
        else if (ev.type === 'end') this.onBodyComplete(ex!);
        else this.onParseError(ev.status, ev.reason);
      }
    } finally {
      this.pumping = false;
    }
    if (this.peerEnded && starved && !this.closing) {
      // The client sent FIN and every complete request has been taken: nothing more will come.
      const ex = this.exchange;
      if (!ex) {
        if (!this.parser.idle) this.server.count('incomplete_request');
        this.closeGracefully();
      } else if (!ex.bodyComplete) {
        ex.body.fail(clientGone('connection closed before the request body was complete'));
        ex.bodyComplete = true;
        ex.closeAfter = true;
        // Already answered and only dropping the rest of the body: nothing is left to do.
        if (ex.discarding) this.closeGracefully();
      }
    }
    this.updateFlow();
  }

  /** Pause the socket while unparsed input piles up; resume when it is taken. */
  private updateFlow(): void {
    if (this.closed) return;
    const pause = !this.closing && this.parser.bufferedBytes >= INPUT_HIGH_WATER;
    if (pause && !this.socket.isPaused()) this.socket.pause();
    else if (!pause && this.socket.isPaused()) this.socket.resume();
    this.armTimer();
  }

  /** The handler took a piece of the request body: parse on. */
  bodyConsumed(): void {
    this.pump();
  }

  private onPeerEnd(): void {
    this.peerEnded = true;
    if (!this.closing) this.pump();
  }

  // --- Requests ---

  private startExchange(head: RequestHead): void {
    const server = this.server;
    this.requests++;
    server.count('requests');
    this.lastProgress = server.clock.now();
    const { path, query } = splitTarget(head.target);
    const body = new BodyStream(this);
    const req: HttpRequest = {
      method: head.method,
      target: head.target,
      path,
      query,
      version: head.version,
      headers: head.headers,
      fields: head.fields,
      contentLength: head.contentLength,
      body,
      remoteAddress: this.socket.remoteAddress,
      remotePort: this.socket.remotePort,
    };
    const ex: Exchange = {
      head,
      req,
      res: undefined as unknown as ServerResponse,
      body,
      bodyComplete: false,
      discarding: false,
      closeAfter: !head.keepAlive || this.stopAfterCurrent || server.isClosed || this.requests >= server.maxRequestsPerConnection,
    };
    ex.res = new ServerResponse(this, ex);
    this.exchange = ex;

    // The body limit matters only to a request that announces a body; a GET without one (most
    // requests) skips the handler's per-route lookup.
    if (head.chunked || (head.contentLength ?? 0) > 0) {
      const limit = server.handler.maxBodyBytes?.(head) ?? server.limits.maxBodyBytes;
      this.parser.setBodyLimit(limit);
      // Refuse a body that is too large before the client sends it (and before 100 Continue).
      if ((head.contentLength ?? 0) > limit) return this.rejectRequest(413, 'body-too-large');
    }
    // RFC 9110 §10.1.1: "Expect: 100-continue" waits for our go-ahead before sending the
    // body; a 1.0 request's expectation is ignored; any other expectation gets 417.
    const expect = head.headers.get('expect');
    if (expect !== undefined && head.version === '1.1') {
      if (expect.toLowerCase() !== '100-continue') return this.rejectRequest(417, 'unsupported-expectation');
      const hasBody = head.chunked || (head.contentLength ?? 0) > 0;
      if (hasBody) this.write(CONTINUE);
    }
    this.runHandler(ex);
  }

  private runHandler(ex: Exchange): void {
    let result: void | Promise<void>;
    try {
      result = this.server.handler(ex.req, ex.res);
    } catch (err) {
      this.onHandlerError(ex, err);
      return;
    }
    if (result && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(
        () => ex.res.end(),
        (err: unknown) => this.onHandlerError(ex, err),
      );
    } else {
      ex.res.end();
    }
  }

  private onHandlerError(ex: Exchange, err: unknown): void {
    if (isClientGone(err)) {
      // The client went away mid-request (reset, or FIN before the whole body): routine on a
      // busy server, so one debug line and a counter, never a warning with a stack trace.
      this.server.count('aborted_requests');
      this.server.logger?.debug({ target: ex.head.target, reason: (err as Error).message }, 'http: request aborted by the client');
      if (ex.res.finished || this.closed) return;
      ex.res.abandon();
      this.closeGracefully();
      return;
    }
    if (ex.res.finished || this.closed) return; // connection gone or response already complete
    this.server.count('handler_error');
    this.server.logger?.warn({ err, target: ex.head.target }, 'http: handler failed');
    if (!ex.res.headersSent) {
      ex.closeAfter = true;
      ex.res.reset(500);
      ex.res.setHeader('content-type', 'text/plain; charset=utf-8');
      ex.res.end('500 Internal Server Error\n');
    } else {
      // The head is out: the only honest signal left is to cut the framing short.
      ex.res.abandon();
      this.closeGracefully();
    }
  }

  private onBodyComplete(ex: Exchange): void {
    ex.bodyComplete = true;
    if (ex.discarding) this.finishExchange();
    else ex.body.end();
  }

  /** The handler ended its response (all bytes queued on the socket). */
  onResponseComplete(ex: Exchange): void {
    if (ex !== this.exchange || this.closing) return;
    this.server.count(responseCounter(ex.res.status));
    if (ex.closeAfter) return this.closeGracefully();
    if (!ex.bodyComplete) {
      // The handler answered without reading the whole body. Read and drop a small rest
      // to keep the connection; for a large or unknown rest, closing is cheaper.
      const rest = this.parser.bodyRemaining;
      if (rest === undefined || rest + ex.body.queuedBytes > MAX_DRAIN_BYTES) return this.closeGracefully();
      ex.discarding = true;
      ex.body.discard();
      this.pump();
      return;
    }
    this.finishExchange();
    this.pump();
  }

  private finishExchange(): void {
    this.exchange = null;
    const now = this.server.clock.now();
    this.lastProgress = now;
    this.headStartedAt = now; // a pipelined request already waiting starts its clock now
    if (this.stopAfterCurrent) this.closeGracefully();
  }

  /** Answer a request that will not reach the handler (413, 417) and close. */
  private rejectRequest(status: number, reason: string): void {
    this.server.count(`rejected_${reason}`);
    const ex = this.exchange!;
    ex.closeAfter = true;
    ex.res.finished = true; // the handler never sees this exchange
    this.sendError(status, reason);
  }

  private onParseError(status: number, reason: string): void {
    this.server.count(`parse_error_${reason}`);
    this.server.logger?.debug({ status, reason }, 'http: bad request');
    const ex = this.exchange;
    if (ex) {
      // The error is inside the current request's body.
      ex.body.fail(Object.assign(new Error(`bad request body: ${reason}`), { status }));
      if (ex.res.headersSent) {
        ex.res.abandon();
        this.closeGracefully();
        return;
      }
      ex.res.abandon();
    }
    this.sendError(status, reason);
  }

  /** A small text response with `Connection: close`, then FIN. */
  private sendError(status: number, reason: string): void {
    const body = `${status} ${reasonPhrase(status)}: ${reason}\n`;
    const head =
      responseHead(status, this.server.serverName) +
      `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n`;
    this.server.count(responseCounter(status));
    this.write(Buffer.from(head + body, 'latin1'));
    this.closeGracefully();
  }

  // --- Output ---

  /** Whether writes can still go out. */
  get writable(): boolean {
    return !this.closed && !this.closing && !this.socket.writableEnded;
  }

  get serverName(): string {
    return this.server.serverName;
  }

  write(data: Uint8Array): boolean {
    if (this.closed || this.socket.writableEnded) return false;
    this.lastProgress = this.server.clock.now();
    return this.socket.write(data);
  }

  /** Several buffers in one go (one writev for net.Socket; one send buffer for a TcpStream). */
  writeAll(parts: Uint8Array[]): boolean {
    if (this.closed || this.socket.writableEnded) return false;
    this.lastProgress = this.server.clock.now();
    if (this.socket.writeAll) return this.socket.writeAll(parts);
    let ok = true;
    for (const p of parts) ok = this.socket.write(p);
    return ok;
  }

  /** Resolves when the socket drains; rejects if the connection goes away first. */
  waitForDrain(): Promise<void> {
    if (this.closed) return Promise.reject(connectionGone());
    if (!this.socket.needDrain) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
  }

  private onDrain(): void {
    this.lastProgress = this.server.clock.now();
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w.resolve();
    if (!this.exchange && !this.closing) this.pump();
  }

  // --- Ending ---

  /**
   * Close after the bytes already queued: FIN, then keep reading and dropping input
   * until the client closes too (RFC 9112 §9.6 "lingering close": closing at once with
   * unread input would make the kernel send RST, which can destroy the response before
   * the client has read it).
   */
  closeGracefully(): void {
    if (this.closing || this.closed) return;
    this.closing = true;
    const ex = this.exchange;
    if (ex && !ex.bodyComplete) ex.body.fail(connectionGone);
    this.parser.discardInput(); // lingering close: input is dropped from now on
    this.socket.end();
    if (this.socket.isPaused()) this.socket.resume();
    this.armTimer();
  }

  /** Server shutdown: close now if idle, else after the current exchange. */
  shutdown(): void {
    if (this.exchange) this.stopAfterCurrent = true;
    else this.closeGracefully();
  }

  private onClose(): void {
    this.closed = true;
    this.armedAt = Infinity;
    this.server.deadlines.remove(this);
    // A handler may still hold the request: it holds no unread input with it.
    this.parser.discardInput();
    this.exchange?.body.fail(connectionGone);
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w.reject(connectionGone());
  }

  // --- Timeouts ---

  /**
   * When this connection should be looked at next. Progress only ever moves deadlines
   * later, so the timer is re-armed only when a deadline moves earlier; when it fires
   * early, onTimer re-arms it for the current deadline.
   */
  private deadline(): number {
    const s = this.server;
    if (this.closed) return Infinity;
    if (this.closing) {
      // Until our bytes are flushed, a stalled client gets sendTimeout; after, lingerMs.
      return this.writeFinishedAt < Infinity ? this.writeFinishedAt + s.lingerMs : this.lastProgress + s.sendTimeoutMs;
    }
    if (this.exchange) return this.lastProgress + s.sendTimeoutMs;
    if (this.parser.idle) return this.lastProgress + s.idleTimeoutMs;
    return this.headStartedAt + s.headersTimeoutMs;
  }

  private armTimer(): void {
    const at = this.deadline();
    if (at < this.armedAt) {
      this.armedAt = at;
      this.server.deadlines.schedule(this, at);
    }
  }

  /** The deadline this connection is queued for (Infinity: none). */
  get queuedDeadline(): number {
    return this.armedAt;
  }

  /** The deadline queue reached `at`, which this connection asked for (unless it moved since). */
  onDeadline(queuedAt: number): void {
    if (queuedAt !== this.armedAt) return; // stale: re-armed earlier since, or closed
    this.armedAt = Infinity;
    const now = this.server.clock.now();
    const at = this.deadline();
    if (at === Infinity) return;
    if (now < at) {
      this.armedAt = at;
      this.server.deadlines.schedule(this, at);
      return;
    }
    if (this.closing) {
      // The client neither read our response nor closed: give up on it.
      this.server.count('linger_timeout');
      this.socket.destroy();
    } else if (this.exchange) {
      this.server.count('send_timeout');
      this.server.logger?.debug({ target: this.exchange.head.target }, 'http: no progress, aborting connection');
      this.exchange.res.abandon();
      this.socket.destroy();
    } else if (this.parser.idle) {
      this.server.count('idle_timeout');
      this.closeGracefully();
    } else {
      // RFC 9110 §15.5.9: 408 when the client did not finish its request in time.
      this.server.count('headers_timeout');
      this.sendError(408, 'headers-timeout');
    }
  }
}

/** Framing of a response body (RFC 9112 §6). */
type Framing = 'length' | 'chunked' | 'close' | 'none';

class ServerResponse implements HttpResponse {
  status = 200;
  headersSent = false;
  /** No more body will be written (ended, abandoned, or never handed to a handler). */
  finished = false;
  private fields = new Map<string, [name: string, value: string]>();
  /** Repeats added by appendHeader, sent after `fields`. */
  private repeated: Array<[name: string, value: string]> | undefined;
  private framing: Framing = 'none';
  private remaining = 0;
  /** The response must not carry a body: HEAD, 204, 304 (RFC 9110 §6.4.1). */
  private noBody = false;

  constructor(
    private readonly conn: Connection,
    private readonly ex: Exchange,
  ) {}

  setHeader(name: string, value: string | number): void {
    if (this.headersSent) throw new Error('setHeader: the head has already been sent');
    // A non-negative integer needs no check (Content-Length, most often); a string may hold CR/LF.
    const integer = typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
    const v = String(value);
    // Refusing CR/LF here prevents response splitting by a careless handler.
    const lower = fieldNameKey(name);
    if (!integer && BAD_VALUE_CHAR.test(v)) throw new Error(`setHeader: invalid value for ${name}`);
    if (lower === 'transfer-encoding') throw new Error('setHeader: the server chooses the transfer coding');
    if (lower === 'content-length' && !integer && !/^\d+$/.test(v)) throw new Error('setHeader: Content-Length must be a non-negative integer');
    this.fields.set(lower, [name, v]);
  }

  appendHeader(name: string, value: string): void {
    if (!this.fields.has(name.toLowerCase())) return this.setHeader(name, value);
    if (this.headersSent) throw new Error('appendHeader: the head has already been sent');
    if (!TOKEN.test(name) || BAD_VALUE_CHAR.test(value)) throw new Error(`appendHeader: invalid field ${JSON.stringify(name)}`);
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding' || lower === 'content-length' || lower === 'connection') throw new Error(`appendHeader: ${name} cannot repeat`);
    (this.repeated ??= []).push([name, value]);
  }

  /** Forget status and fields (only before the head is sent): used for a 500 after a throw. */
  reset(status: number): void {
    this.status = status;
    this.fields.clear();
    this.repeated = undefined;
  }

  /** Stop this response without finishing its framing (the connection is closing). */
  abandon(): void {
    this.finished = true;
  }

  async write(chunk: Uint8Array | string): Promise<void> {
    if (this.finished) throw new Error('write after end');
    if (!this.conn.writable) throw connectionGone();
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const ok = this.headersSent ? this.sendBody(data) : this.sendHead(undefined, data);
    if (!ok) await this.conn.waitForDrain();
  }

  end(chunk?: Uint8Array | string): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.conn.writable) return;
    const data = chunk === undefined ? undefined : typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (!this.headersSent) {
      // The whole body is known: frame it with Content-Length.
      this.sendHead(data?.length ?? 0, data);
    } else if (data) {
      this.sendBody(data);
    }
    if (!this.noBody && this.framing === 'chunked') this.conn.write(LAST_CHUNK);
    if (!this.noBody && this.framing === 'length' && this.remaining > 0) {
      // Fewer bytes than announced: the client would wait forever for the rest.
      this.conn.closeGracefully();
      return;
    }
    this.conn.onResponseComplete(this.ex);
  }

  /**
   * Serialise the status line and fields, choose the framing (RFC 9112 §6.3), and send
   * them together with the first body bytes. `knownLength` is the whole body's length
   * when the handler ends without streaming. Returns false when the socket wants a drain.
   */
  private sendHead(knownLength: number | undefined, data: Uint8Array | undefined): boolean {
    const ex = this.ex;
    const status = this.status;
    if (!Number.isInteger(status) || status < 200 || status > 999) throw new Error(`invalid status ${status}`);
    this.headersSent = true;
    this.noBody = ex.head.method === 'HEAD' || status === 204 || status === 304;

    const own = this.fields.get('content-length');
    if (status === 204 || status === 304) {
      this.fields.delete('content-length'); // RFC 9110 §8.6: no Content-Length in a 204
      this.framing = 'none';
    } else if (own) {
      this.framing = 'length';
      this.remaining = Number(own[1]);
    } else if (knownLength !== undefined) {
      this.framing = 'length';
      this.remaining = knownLength;
      this.fields.set('content-length', ['Content-Length', String(knownLength)]);
    } else if (ex.head.version === '1.1') {
      this.framing = 'chunked';
    } else {
      // An HTTP/1.0 client knows no chunked coding: the body ends when we close.
      this.framing = 'close';
      if (!this.noBody) ex.closeAfter = true;
    }
    const connection = this.fields.get('connection');
    if (connection && /(^|,)\s*close\s*(,|$)/i.test(connection[1])) ex.closeAfter = true;
    this.fields.delete('connection');

    let head = responseHead(status, this.conn.serverName, this.fields);
    for (const [name, value] of this.fields.values()) head += `${name}: ${value}\r\n`;
    if (this.repeated) for (const [name, value] of this.repeated) head += `${name}: ${value}\r\n`;
    if (this.framing === 'chunked') head += 'Transfer-Encoding: chunked\r\n';
    // RFC 9112 §9.6: announce the close; §9.3: an HTTP/1.0 client needs keep-alive spelled out.
    if (ex.closeAfter) head += 'Connection: close\r\n';
    else if (ex.head.version === '1.0') head += 'Connection: keep-alive\r\n';
    head += '\r\n';

    if (this.noBody || !data || data.length === 0) return this.conn.write(Buffer.from(head, 'latin1'));
    const parts = this.frame(data);
    if (parts.length === 1 && data.length <= COALESCE_BYTES) {
      // A small response goes out as one buffer: one write, one segment. The head is written
      // straight into it (latin1: one byte per UTF-16 unit, so head.length bytes).
      const out = Buffer.allocUnsafe(head.length + data.length);
      out.write(head, 0, 'latin1');
      out.set(data, head.length);
      return this.conn.write(out);
    }
    return this.conn.writeAll([Buffer.from(head, 'latin1'), ...parts]);
  }

  /** Queue body bytes in the chosen framing. Returns false when the socket wants a drain. */
  private sendBody(data: Uint8Array): boolean {
    if (this.noBody || data.length === 0) return true;
    const parts = this.frame(data);
    return parts.length === 1 ? this.conn.write(parts[0]!) : this.conn.writeAll(parts);
  }

  /** The wire form of a body piece: as is, or as one chunk (RFC 9112 §7.1). */
  private frame(data: Uint8Array): Uint8Array[] {
    if (this.framing === 'length') {
      if (data.length > this.remaining) {
        // Sending more would corrupt the next response on this connection.
        this.abandon();
        this.conn.closeGracefully();
        throw new Error('response body longer than its Content-Length');
      }
      this.remaining -= data.length;
      return [data];
    }
    if (this.framing === 'chunked') return [Buffer.from(`${data.length.toString(16)}\r\n`, 'latin1'), data, CRLF];
    if (this.framing === 'close') return [data];
    throw new Error(`status ${this.status} must not have a body`);
  }
}

const CRLF = Buffer.from('\r\n', 'latin1');
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/**
 * Field names handlers have set, checked and lower-cased once: a handler sets the same few names
 * on every response, and a regular expression test per name is a visible part of a small one's
 * cost. Bounded: past FIELD_NAME_CACHE names, new ones are checked every time.
 */
const fieldNames = new Map<string, string>();
const FIELD_NAME_CACHE = 256;

/** `name` lower-cased, after checking it is a token (RFC 9110 §5.1); throws for a bad one. */
function fieldNameKey(name: string): string {
  const known = fieldNames.get(name);
  if (known !== undefined) return known;
  if (!TOKEN.test(name)) throw new Error(`setHeader: invalid field name ${JSON.stringify(name)}`);
  const lower = name.toLowerCase();
  if (fieldNames.size < FIELD_NAME_CACHE) fieldNames.set(name, lower);
  return lower;
}

function connectionGone(): Error {
  return clientGone('connection closed');
}

/** Marks the errors that mean "the client went away", whatever the handler wraps around them. */
const CLIENT_GONE = Symbol('client gone');

/** An error for a client that left mid-exchange: code ECONNRESET, no stack trace. */
function clientGone(message: string): Error {
  // Made for every connection that closes mid-exchange: skip the (costly) stack trace.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return Object.assign(new Error(message), { code: 'ECONNRESET', [CLIENT_GONE]: true });
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function isClientGone(err: unknown): boolean {
  return typeof err === 'object' && err !== null && CLIENT_GONE in err;
}

/** IMF-fixdate (RFC 9110 §5.6.7), cached for the current second. */
let dateCache = { second: -1, text: '' };
/** "responses_2xx" ... "responses_9xx", made once instead of a new string per response. */
const RESPONSE_COUNTERS = Array.from({ length: 10 }, (_, i) => `responses_${i}xx`);
function responseCounter(status: number): string {
  return RESPONSE_COUNTERS[Math.floor(status / 100)] ?? `responses_${Math.floor(status / 100)}xx`;
}

function reasonPhrase(status: number): string {
  return REASONS[status] ?? 'Unknown';
}

/** The status line, then Date and Server unless the handler set them (`fields`: lower-case names). */
function responseHead(status: number, serverName: string, fields?: ReadonlyMap<string, unknown>): string {
  const date = !fields?.has('date');
  const server = !fields?.has('server');
  // The usual head (both fields ours) is the same string for a whole second: keep the last one.
  if (date && server) {
    const text = httpDate();
    const c = headCache;
    if (c.status === status && c.serverName === serverName && c.date === text) return c.head;
    headCache = { status, serverName, date: text, head: `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\nDate: ${text}\r\nServer: ${serverName}\r\n` };
    return headCache.head;
  }
  let head = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
  if (date) head += `Date: ${httpDate()}\r\n`;
  if (server) head += `Server: ${serverName}\r\n`;
  return head;
}
let headCache = { status: 0, serverName: '', date: '', head: '' };

function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateCache.second) dateCache = { second, text: new Date(second * 1000).toUTCString() };
  return dateCache.text;
}

export type { Field, HttpVersion, ParserLimits, RequestHead };
