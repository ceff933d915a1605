/**
 * Node-style sockets over the sans-I/O connection: TcpSocket is a stream.Duplex with
 * backpressure both ways, TcpServer mirrors net.Server. They belong to the runtime side:
 * they read the stack's clock and ask it to flush after user actions.
 */
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import type { Clock, ClockTimer } from '../runtime/clock.js';
import type { Ipv4Addr } from '../ip/addr.js';
import { formatIpv4, parseIpv4 } from '../ip/addr.js';
import type { Connection, TcpErrorCode } from './connection.js';
import type { TcpLayer } from './layer.js';
import type { Listener } from './listener.js';
import { DEFAULT_BACKLOG } from './listener.js';
import { codeError } from './layer.js';
import { TcpState } from './state.js';
import { TcpStream } from './stream.js';

/** What sockets need from the runtime. */
export interface SocketRuntime {
  readonly clock: Clock;
  readonly tcp: TcpLayer;
  /** Flush pending output soon (after the current synchronous work). */
  kick(): void;
}

export interface TcpSocketOptions {
  /** Like net.Socket: when false (default), our side ends once the peer's FIN is read. */
  allowHalfOpen?: boolean;
  /** Readable/writable stream buffer sizes (bytes). */
  highWaterMark?: number;
}

export interface ConnectOptions {
  host: string;
  port: number;
  localPort?: number;
  allowHalfOpen?: boolean;
  noDelay?: boolean;
}

export class TcpSocket extends Duplex {
  connecting = false;
  private conn: Connection | undefined;
  private readonly rt: SocketRuntime;
  private wantRead = false;
  private eofPushed = false;
  private pendingWrite: (() => void) | undefined;
  private idleTimer: ClockTimer | undefined;
  private idleMs = 0;

  constructor(rt: SocketRuntime, conn: Connection | undefined, opts: TcpSocketOptions = {}) {
    super({
      allowHalfOpen: opts.allowHalfOpen ?? false,
      highWaterMark: opts.highWaterMark ?? 64 * 1024,
      decodeStrings: true,
      // 'close' is emitted by _destroy with net.Socket's `hadError` argument.
      emitClose: false,
      autoDestroy: true,
    });
    this.rt = rt;
    if (conn) this.attach(conn);
  }

  /** Bind this socket to a connection (server side: at accept; client side: at connect). */
  attach(conn: Connection): void {
    this.conn = conn;
    // The socket itself is the connection's user (its on* methods): no closures per connection.
    conn.user = this;
  }

  // --- ConnectionUser (called by the connection) ---

  /** @internal */
  onReadable(): void {
    this.pull();
  }

  /** @internal */
  onError(code: TcpErrorCode, message: string): void {
    this.onConnError(code, message);
  }

  /** @internal */
  onClose(): void {
    this.onConnClose();
  }

  get connection(): Connection | undefined {
    return this.conn;
  }

  // Formatted when asked, not held: 10,000 idle sockets would hold 10,000 copies of their strings.
  get remoteAddress(): string | undefined {
    return this.conn ? formatIpv4(this.conn.remoteAddr) : undefined;
  }
  get remotePort(): number | undefined {
    return this.conn?.remotePort;
  }
  get remoteFamily(): string {
    return 'IPv4';
  }
  get localAddress(): string | undefined {
    return this.conn ? formatIpv4(this.conn.localAddr) : undefined;
  }
  get localPort(): number | undefined {
    return this.conn?.localPort;
  }
  get bytesRead(): number {
    return this.conn?.bytesReceived ?? 0;
  }
  /** Bytes the user handed to write() (like net.Socket). */
  bytesWritten = 0;
  /** The TCP state, for inspection. */
  get state(): TcpState {
    return this.conn?.state ?? TcpState.CLOSED;
  }
  /** net.Socket's readyState. */
  get readyState(): string {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  address(): { address: string; family: string; port: number } | Record<string, never> {
    if (!this.conn) return {};
    return { address: formatIpv4(this.conn.localAddr), family: 'IPv4', port: this.conn.localPort };
  }

  setNoDelay(noDelay = true): this {
    if (this.conn) {
      this.conn.snd.nagle = !noDelay;
      if (noDelay) {
        this.conn.markDirty();
        this.rt.kick();
      }
    }
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    this.conn?.setKeepAlive(enable, initialDelay > 0 ? initialDelay : undefined, this.rt.clock.now());
    this.rt.kick();
    return this;
  }

  /** Like net.Socket#setTimeout: 'timeout' after `ms` of inactivity; 0 disables. */
  setTimeout(ms: number, callback?: () => void): this {
    this.idleMs = ms;
    if (callback) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    if (ms === 0) {
      this.idleTimer?.clear();
    } else {
      this.idleTimer ??= this.rt.clock.timer(() => this.emit('timeout'));
      this.touch();
    }
    return this;
  }

  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  private touch(): void {
    if (this.idleMs > 0 && this.idleTimer) this.idleTimer.set(this.rt.clock.now() + this.idleMs);
  }

  // --- Readable side: pull from the connection only while the consumer wants data ---

  override _read(): void {
    this.wantRead = true;
    this.pull();
  }

  private pull(): void {
    const conn = this.conn;
    // After destroy() the stream is over without an end: pushing EOF now would still emit 'end'.
    if (!conn || this.eofPushed || this.destroyed) return;
    let got = false;
    while (this.wantRead) {
      const chunk = conn.read();
      if (!chunk) break;
      got = true;
      this.wantRead = this.push(chunk);
    }
    if (got) {
      this.touch();
      this.rt.kick(); // a read may open the window: let the connection send an update
    }
    if (conn.readEnded || (conn.state === TcpState.CLOSED && conn.rcvBuffered === 0)) {
      if (!this.eofPushed && conn.rcvBuffered === 0) {
        this.eofPushed = true;
        this.push(null);
      }
    }
  }

  // --- Writable side ---

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const conn = this.conn;
    if (!conn || conn.state === TcpState.CLOSED) {
      cb(codeError('EPIPE', 'This socket has been ended by the other party'));
      return;
    }
    this.bytesWritten += chunk.length;
    const below = conn.send(chunk);
    this.touch();
    this.rt.kick();
    if (below) cb();
    else this.pendingWrite = () => cb();
  }

  /** @internal */
  onWritable(): void {
    const cb = this.pendingWrite;
    if (cb && this.conn?.writable) {
      this.pendingWrite = undefined;
      cb();
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.connecting) {
      // Like net.Socket: end() before the handshake completes closes once connected, after the
      // data written so far. (RFC 9293 §3.10.4's CLOSE in SYN-SENT would delete it all.)
      this.once('connect', () => this._final(cb));
      return;
    }
    const conn = this.conn;
    if (conn && conn.state !== TcpState.CLOSED) {
      conn.close();
      this.rt.kick();
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.idleTimer?.clear();
    const conn = this.conn;
    if (conn && conn.state !== TcpState.CLOSED) {
      const now = this.rt.clock.now();
      // After end() the close is already under way: let it finish on its own (like close(2)
      // after shutdown(2)). Otherwise destroy() is an abort: RST (RFC 9293 §3.10.5).
      if (conn.finQueued && conn.rcvBuffered === 0) conn.orphan(now);
      else conn.abort(now, 'destroy');
      this.rt.kick();
    }
    const pending = this.pendingWrite;
    this.pendingWrite = undefined;
    pending?.();
    cb(err);
    process.nextTick(() => this.emit('close', err != null));
  }

  // --- Connection callbacks ---

  /** @internal */
  onConnect(): void {
    this.connecting = false;
    this.touch();
    this.emit('connect');
    this.emit('ready');
  }

  private onConnError(code: TcpErrorCode, message: string): void {
    const err = codeError(code, `${this.connecting ? 'connect ' : ''}${code}: ${message}`) as Error & {
      code: string;
      syscall?: string;
      address?: string;
      port?: number;
    };
    err.syscall = this.connecting ? 'connect' : 'read';
    if (this.conn) {
      err.address = this.remoteAddress;
      err.port = this.remotePort;
    }
    this.connecting = false;
    this.destroy(err);
  }

  private onConnClose(): void {
    this.pull();
    const pending = this.pendingWrite;
    if (pending && this.conn?.state === TcpState.CLOSED) {
      this.pendingWrite = undefined;
      pending();
    }
  }
}

export interface ServerOptions {
  allowHalfOpen?: boolean;
  noDelay?: boolean;
  /** Like net.createServer's: the readable/writable buffer size of every accepted socket. */
  highWaterMark?: number;
  /**
   * Internal fast path (the built-in HTTP server): accepted connections are handed over as
   * plain TcpStreams, without Node's stream machinery, instead of 'connection' TcpSockets.
   * The owner decides when our side ends (always half-open).
   */
  onStream?: (stream: TcpStream) => void;
}

/** Mirrors net.Server: listen(), 'listening', 'connection', close(), address(). */
export class TcpServer extends EventEmitter {
  private listener: Listener | undefined;
  private readonly rt: SocketRuntime;
  private readonly opts: ServerOptions;
  /** Accepted sockets and TcpStreams not yet closed: counted, not held in a Set (see
   *  runtime/linked-set.ts for what a Set with members coming and going costs the GC). */
  private open = 0;
  private closing = false;
  private acceptScheduled = false;

  constructor(rt: SocketRuntime, opts: ServerOptions = {}, onConnection?: (socket: TcpSocket) => void) {
    super();
    this.rt = rt;
    this.opts = opts;
    if (onConnection) this.on('connection', onConnection);
  }

  get listening(): boolean {
    return this.listener !== undefined;
  }

  listen(port: number, backlogOrCb?: number | (() => void), cb?: () => void): this {
    const backlog = typeof backlogOrCb === 'number' ? backlogOrCb : DEFAULT_BACKLOG;
    const done = typeof backlogOrCb === 'function' ? backlogOrCb : cb;
    if (done) this.once('listening', done);
    try {
      this.listener = this.rt.tcp.listen(port, backlog);
    } catch (err) {
      this.rt.clock.defer(() => this.emit('error', err));
      return this;
    }
    this.listener.onAcceptable = () => this.scheduleAccept();
    this.rt.clock.defer(() => this.emit('listening'));
    return this;
  }

  private scheduleAccept(): void {
    if (this.acceptScheduled) return;
    this.acceptScheduled = true;
    this.rt.clock.defer(() => {
      this.acceptScheduled = false;
      this.acceptAll();
    });
  }

  private acceptAll(): void {
    const l = this.listener;
    if (!l) return;
    for (let conn = l.accept(); conn; conn = l.accept()) {
      if (this.opts.onStream) {
        this.acceptStream(conn, this.opts.onStream);
        continue;
      }
      const socket = new TcpSocket(this.rt, conn, { allowHalfOpen: this.opts.allowHalfOpen, highWaterMark: this.opts.highWaterMark });
      if (this.opts.noDelay) socket.setNoDelay(true);
      this.open++;
      socket.once('close', () => {
        this.open--;
        if (this.closing && this.connectionCount === 0) this.emit('close');
      });
      this.emit('connection', socket);
      // Deliver anything that arrived with or right after the handshake.
      socket.read(0);
    }
  }

  private acceptStream(conn: Connection, onStream: (stream: TcpStream) => void): void {
    const stream = new TcpStream(this.rt, conn);
    if (this.opts.noDelay) stream.setNoDelay(true);
    this.open++;
    stream.onClosed = () => {
      this.open--;
      if (this.closing && this.connectionCount === 0) this.emit('close');
    };
    onStream(stream);
  }

  address(): { address: string; family: string; port: number } | null {
    if (!this.listener) return null;
    return { address: formatIpv4(this.rt.tcp.addr), family: 'IPv4', port: this.listener.port };
  }

  /** Stop accepting; 'close' once every accepted connection has closed (net.Server semantics). */
  close(cb?: (err?: Error) => void): this {
    if (cb) this.once('close', cb);
    if (this.listener) {
      this.rt.tcp.unlisten(this.listener);
      this.listener = undefined;
    }
    this.closing = true;
    if (this.connectionCount === 0) this.rt.clock.defer(() => this.emit('close'));
    return this;
  }

  get connectionCount(): number {
    return this.open;
  }
}

/** Open a connection; 'connect' fires when established, 'error' with ECONNREFUSED/ETIMEDOUT otherwise. */
export function connectSocket(rt: SocketRuntime, opts: ConnectOptions, onConnect?: () => void): TcpSocket {
  const socket = new TcpSocket(rt, undefined, { allowHalfOpen: opts.allowHalfOpen });
  if (onConnect) socket.once('connect', onConnect);
  const addr: Ipv4Addr | undefined = parseIpv4(opts.host);
  if (addr === undefined) {
    rt.clock.defer(() => socket.destroy(codeError('EINVAL', `invalid IPv4 address: ${opts.host}`)));
    return socket;
  }
  try {
    socket.connecting = true;
    const conn = rt.tcp.connect(addr, opts.port, rt.clock.now(), opts.localPort);
    socket.attach(conn);
    if (opts.noDelay) socket.setNoDelay(true);
    rt.kick();
  } catch (err) {
    socket.connecting = false;
    rt.clock.defer(() => socket.destroy(err as Error));
  }
  return socket;
}
