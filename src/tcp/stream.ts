/**
 * TcpStream: a connection's byte stream without Node's stream machinery, the internal fast path
 * of the built-in HTTP server (and so of the reverse proxy's client side). Users get TcpSocket,
 * the stream.Duplex; this is the same TCP behaviour with plain callbacks and no buffering of its
 * own, so a request costs no Readable/Writable bookkeeping, nextTick or per-chunk callbacks:
 *
 *   reading   in-order data is pulled from the connection and handed to `data` while not paused;
 *             a paused reader leaves it in the receive buffer, so the advertised window closes
 *             (as TcpSocket's backpressure does); `end` once the peer's FIN has been read
 *   writing   write() puts bytes into the connection's send buffer and returns false once it is at
 *             its limit; `drain` when acknowledgments have made room (TcpSocket's Writable keeps up
 *             to highWaterMark more in front of it; the bytes on the wire are the same)
 *   ending    end() queues our FIN after the data; `finish` once the last write fitted the send
 *             buffer (when TcpSocket's 'finish' comes); destroy() aborts with RST unless the close
 *             is already under way, exactly as TcpSocket#destroy
 *   close     once both directions are done at the stream level (our end() finished and the peer's
 *             end read: the connection then finishes closing on its own, as an orphan), on destroy(),
 *             or after `error` (reset, timeout)
 *
 * Runtime side, like socket.ts: it asks the stack to flush after user actions.
 */
import type { Connection, ConnectionUser, TcpErrorCode } from './connection.js';
import { formatIpv4 } from '../ip/addr.js';
import { codeError } from './layer.js';
import type { SocketRuntime } from './socket.js';
import { TcpState } from './state.js';

/** What the owner of a TcpStream is told. */
export interface TcpStreamEvents {
  /** In-order bytes from the peer. */
  data(chunk: Uint8Array): void;
  /** The peer's FIN: no more data will come. */
  end(): void;
  /** write() returned false and the send buffer has room again. */
  drain(): void;
  /** After end(): every byte written is in the connection's send buffer. */
  finish(): void;
  /** The connection failed (ECONNRESET, ETIMEDOUT, EPIPE, ...); `close` follows. */
  error(err: Error & { code: string }): void;
  /** The stream is over; called once. */
  close(hadError: boolean): void;
}

export class TcpStream implements ConnectionUser {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Bytes handed to write(). */
  bytesWritten = 0;
  private ev: TcpStreamEvents | undefined;
  private paused = false;
  private resumeScheduled = false;
  private delivering = false;
  private eofDelivered = false;
  private ended = false;
  private finished = false;
  private drainWanted = false;
  private closed = false;
  /** Told when the stream closes (the TcpServer counting its connections). */
  onClosed: (() => void) | undefined;

  constructor(
    private readonly rt: SocketRuntime,
    readonly conn: Connection,
  ) {
    this.remoteAddress = formatIpv4(conn.remoteAddr);
    this.remotePort = conn.remotePort;
    conn.user = this;
  }

  /** Start delivering events to `ev` (and any data that arrived with the handshake). */
  start(ev: TcpStreamEvents): void {
    this.ev = ev;
    this.onReadable();
  }

  get localPort(): number {
    return this.conn.localPort;
  }

  get writableEnded(): boolean {
    return this.ended;
  }

  /** write() returned false and `drain` has not come yet. */
  get needDrain(): boolean {
    return this.drainWanted;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  isPaused(): boolean {
    return this.paused;
  }

  pause(): void {
    this.paused = true;
  }

  /** Resume reading: delivery restarts soon (as a Readable's resume does), not inside this call. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.resumeScheduled) return;
    this.resumeScheduled = true;
    this.rt.clock.defer(() => {
      this.resumeScheduled = false;
      this.onReadable();
    });
  }

  setNoDelay(noDelay = true): this {
    this.conn.snd.nagle = !noDelay;
    if (noDelay) {
      this.conn.markDirty();
      this.rt.kick();
    }
    return this;
  }

  /** Queue bytes. Returns false when the send buffer is at its limit (wait for `drain`). */
  write(data: Uint8Array): boolean {
    if (this.closed || this.ended) return false;
    const conn = this.conn;
    if (conn.state === TcpState.CLOSED) {
      // As TcpSocket's _write: the connection is gone.
      this.fail(codeError('EPIPE', 'This socket has been ended by the other party'));
      return false;
    }
    this.bytesWritten += data.length;
    const below = conn.send(data);
    this.rt.kick();
    if (!below) this.drainWanted = true;
    return below;
  }

  /** Our FIN after the data written so far (RFC 9293 §3.10.4 CLOSE). */
  end(): void {
    if (this.ended || this.closed) return;
    this.ended = true;
    const conn = this.conn;
    if (conn.state !== TcpState.CLOSED) {
      conn.close();
      this.rt.kick();
    }
    if (conn.writable || conn.state === TcpState.CLOSED) this.finish();
  }

  /** Abort (RST), or let an orderly close that is under way finish on its own. */
  destroy(): void {
    if (this.closed) return;
    this.closeNow(false);
  }

  // --- ConnectionUser ---

  onReadable(): void {
    const ev = this.ev;
    if (!ev || this.closed || this.eofDelivered || this.delivering) return;
    const conn = this.conn;
    let got = false;
    this.delivering = true;
    try {
      while (!this.paused && !this.closed) {
        const chunk = conn.read();
        if (!chunk) break;
        got = true;
        ev.data(chunk);
      }
    } finally {
      this.delivering = false;
    }
    if (got) this.rt.kick(); // a read may open the window: let the connection send an update
    if (this.paused || this.closed) return;
    if (conn.rcvBuffered === 0 && (conn.readEnded || conn.state === TcpState.CLOSED)) {
      this.eofDelivered = true;
      ev.end();
      this.maybeDone();
    }
  }

  onWritable(): void {
    if (this.closed || !this.conn.writable) return;
    if (this.ended && !this.finished) this.finish();
    if (this.drainWanted) {
      this.drainWanted = false;
      this.ev?.drain();
    }
  }

  onError(code: TcpErrorCode, message: string): void {
    this.fail(codeError(code, `${code}: ${message}`));
  }

  onClose(): void {
    // An error (reset, timeout) closed the stream already: `close` is the last event it reports.
    if (this.closed) return;
    // The connection reached TIME-WAIT or CLOSED: what is left to read ends the stream.
    this.onReadable();
    if (this.ended && !this.finished) this.finish();
  }

  // --- internals ---

  private finish(): void {
    this.finished = true;
    this.ev?.finish();
    this.maybeDone();
  }

  /** Both directions done at the stream level: close (the connection finishes on its own). */
  private maybeDone(): void {
    if (this.finished && this.eofDelivered && !this.closed) this.closeNow(false);
  }

  private fail(err: Error & { code: string }): void {
    if (this.closed) return;
    this.ev?.error(err);
    this.closeNow(true);
  }

  private closeNow(hadError: boolean): void {
    this.closed = true;
    const conn = this.conn;
    if (conn.state !== TcpState.CLOSED) {
      const now = this.rt.clock.now();
      // As TcpSocket#_destroy: after end() the close is under way and finishes as an orphan
      // (close(2) after shutdown(2)); otherwise this is an abort (RFC 9293 §3.10.5).
      if (conn.finQueued && conn.rcvBuffered === 0) conn.orphan(now);
      else conn.abort(now, 'destroy');
      this.rt.kick();
    }
    this.ev?.close(hadError);
    this.onClosed?.();
  }
}
