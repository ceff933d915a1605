/**
 * A POSIX-like file-descriptor table over netstack's public socket API (Stack, TcpServer,
 * TcpSocket), for packetdrill's system calls. Each call is an *attempt*: it returns its result,
 * or 'block' when a blocking socket would have to wait; the runner retries a blocked call at
 * every virtual instant until it completes (blocking semantics) and never blocks an O_NONBLOCK
 * socket (EAGAIN, EINPROGRESS instead).
 *
 * How POSIX maps onto the Node-style API:
 *   - listen() is TcpServer.listen(); connections it accepts wait in the fd's queue for accept().
 *   - read() takes from the TcpSocket in paused mode. Accepted sockets have highWaterMark 1, so
 *     the stream holds at most one chunk beyond what the script has read (as for any Node
 *     application reading a TcpSocket); the rest stays in TCP's receive buffer, in the window.
 *   - close() with unread data, or with SO_LINGER {l_onoff=1, l_linger=0}, is TcpSocket.destroy()
 *     (an abort: RST, RFC 9293 §3.10.5 / RFC 2525 §2.17); otherwise end() then destroy() once
 *     finished, which lets TCP finish the close on its own, like close(2).
 *   - Errors arrive as 'error' events (ECONNRESET, ECONNREFUSED, ETIMEDOUT); the next call that
 *     can report them returns -1 with that errno once (SO_ERROR semantics), later writes EPIPE.
 */
import type { Stack, StackOptions } from '../stack.js';
import type { TcpServer, TcpSocket } from '../tcp/socket.js';

export const ERRNO: Record<string, number> = {
  EPERM: 1, EBADF: 9, EAGAIN: 11, EWOULDBLOCK: 11, EINVAL: 22, EPIPE: 32, EOPNOTSUPP: 95, EADDRINUSE: 98,
  ENETUNREACH: 101, ECONNABORTED: 103, ECONNRESET: 104, EISCONN: 106, ENOTCONN: 107, ETIMEDOUT: 110,
  ECONNREFUSED: 111, EHOSTUNREACH: 113, EALREADY: 114, EINPROGRESS: 115, EMSGSIZE: 90, ENOPROTOOPT: 92,
};

/** Linux's values for the symbols scripts use. */
export const SYMBOLS: Record<string, number> = {
  AF_INET: 2, PF_INET: 2, SOCK_STREAM: 1, SOCK_NONBLOCK: 0x800, SOCK_CLOEXEC: 0x80000, IPPROTO_TCP: 6, IPPROTO_IP: 0, SOL_SOCKET: 1, SOL_TCP: 6,
  SO_REUSEADDR: 2, SO_ERROR: 4, SO_SNDBUF: 7, SO_RCVBUF: 8, SO_KEEPALIVE: 9, SO_OOBINLINE: 10, SO_LINGER: 13, SO_REUSEPORT: 15,
  TCP_NODELAY: 1, TCP_MAXSEG: 2, TCP_KEEPIDLE: 4, TCP_KEEPINTVL: 5, TCP_KEEPCNT: 6,
  F_GETFL: 3, F_SETFL: 4, O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2, O_NONBLOCK: 0x800,
  SHUT_RD: 0, SHUT_WR: 1, SHUT_RDWR: 2,
  POLLIN: 0x1, POLLPRI: 0x2, POLLOUT: 0x4, POLLERR: 0x8, POLLHUP: 0x10, POLLNVAL: 0x20, POLLRDNORM: 0x40, POLLWRNORM: 0x100, POLLRDHUP: 0x2000,
  MSG_OOB: 0x1, MSG_PEEK: 0x2, MSG_DONTWAIT: 0x40, MSG_NOSIGNAL: 0x4000,
  SIOCINQ: 0x541b, FIONREAD: 0x541b,
  ...ERRNO,
};

/** The socket options setsockopt() understands (others skip the script). */
export const SETSOCKOPT_NAMES = new Set([
  'SO_REUSEADDR', 'SO_REUSEPORT', 'SO_RCVBUF', 'SO_SNDBUF', 'TCP_KEEPINTVL', 'TCP_KEEPCNT', 'TCP_NODELAY', 'SO_KEEPALIVE', 'TCP_KEEPIDLE', 'SO_LINGER',
]);

/** The stack-wide TCP settings a script may choose (the `tcp` of StackOptions). */
export type TcpSettings = NonNullable<StackOptions['tcp']>;

export type CallResult = { ret: number; errno?: string; out?: Record<string, number> } | 'block';

/** Thrown when a script needs something netstack does not have: the script is skipped, not failed. */
export class Unsupported extends Error {}

interface AppSocket {
  sock: TcpSocket;
  connected: boolean;
  connecting: boolean;
  eof: boolean;
  /** The error the socket ended with, reported once by the next call that can. */
  error: string | undefined;
  errorReported: boolean;
  closed: boolean;
}

interface Fd {
  num: number;
  nonblock: boolean;
  port: number | undefined;
  server: TcpServer | undefined;
  listenError: string | undefined;
  queue: AppSocket[];
  app: AppSocket | undefined;
  linger0: boolean;
  noDelay: boolean;
  keepalive: boolean;
  keepIdleMs: number | undefined;
  shutRd: boolean;
  shutWr: boolean;
}

export interface SocketEnv {
  /** The stack, created on first use with the configuration the script has set so far. */
  stack(): Stack;
  /** Whether the stack exists yet (buffer sizes can only be chosen before). */
  hasStack(): boolean;
  /** Stack-wide TCP settings the script may still change before the stack exists. */
  config: TcpSettings;
  bindPort: number;
  connectPort: number;
  remoteHost: string;
  /** The script starts an active open (the runner learns the local port from our SYN). */
  onConnect(): void;
}

export class FdTable {
  private readonly fds = new Map<number, Fd>();

  constructor(private readonly env: SocketEnv) {}

  /** Close every socket at the end of a script, quietly. */
  destroyAll(): void {
    for (const fd of this.fds.values()) {
      fd.server?.close();
      for (const a of fd.queue) a.sock.destroy();
      fd.app?.sock.destroy();
    }
    this.fds.clear();
  }

  socket(domain: number | undefined, type: number | undefined): CallResult {
    if (domain !== undefined && domain !== SYMBOLS['AF_INET']) throw new Unsupported('sockets other than AF_INET (netstack is IPv4 only)');
    if (type !== undefined && (type & 0xf) !== SYMBOLS['SOCK_STREAM']) throw new Unsupported('sockets other than SOCK_STREAM');
    let n = 3;
    while (this.fds.has(n)) n++;
    this.fds.set(n, {
      num: n, nonblock: type !== undefined && (type & SYMBOLS['O_NONBLOCK']!) !== 0, port: undefined, server: undefined, listenError: undefined,
      queue: [], app: undefined, linger0: false, noDelay: false, keepalive: false, keepIdleMs: undefined, shutRd: false, shutWr: false,
    });
    return { ret: n };
  }

  private get(num: number): Fd | undefined {
    return this.fds.get(num);
  }

  bind(num: number): CallResult {
    const fd = this.get(num);
    if (!fd) return err('EBADF');
    if (fd.port !== undefined) return err('EINVAL');
    fd.port = this.env.bindPort;
    return { ret: 0 };
  }

  listen(num: number, backlog: number): CallResult {
    const fd = this.get(num);
    if (!fd) return err('EBADF');
    if (fd.app) return err('EINVAL');
    if (fd.server) return { ret: 0 };
    const stack = this.env.stack();
    const server = stack.createServer({ allowHalfOpen: true, highWaterMark: 1, noDelay: fd.noDelay }, (sock) => {
      const app = this.track(sock, true);
      if (fd.keepalive) sock.setKeepAlive(true, fd.keepIdleMs ?? 0);
      fd.queue.push(app);
    });
    server.on('error', (e: NodeJS.ErrnoException) => (fd.listenError = e.code ?? 'EINVAL'));
    server.listen(fd.port ?? this.env.bindPort, Math.max(1, backlog));
    fd.server = server;
    return { ret: 0 };
  }

  accept(num: number): CallResult {
    const fd = this.get(num);
    if (!fd) return err('EBADF');
    if (!fd.server) return err('EINVAL');
    const app = fd.queue.shift();
    if (!app) return fd.nonblock ? err('EAGAIN') : 'block';
    let n = 3;
    while (this.fds.has(n)) n++;
    this.fds.set(n, {
      num: n, nonblock: false, port: fd.port, server: undefined, listenError: undefined, queue: [], app,
      linger0: fd.linger0, noDelay: fd.noDelay, keepalive: fd.keepalive, keepIdleMs: fd.keepIdleMs, shutRd: false, shutWr: false,
    });
    return { ret: n };
  }

  /** connect(); called again for the same fd while blocked or to ask about a non-blocking connect. */
  connect(num: number, again: boolean): CallResult {
    const fd = this.get(num);
    if (!fd) return err('EBADF');
    if (fd.server) return err('EISCONN');
    const a = fd.app;
    if (!a) {
      this.env.onConnect();
      const sock = this.env.stack().connect({ host: this.env.remoteHost, port: this.env.connectPort, allowHalfOpen: true, noDelay: fd.noDelay });
      const app = this.track(sock, false);
      app.connecting = true;
      if (fd.keepalive) sock.once('connect', () => sock.setKeepAlive(true, fd.keepIdleMs ?? 0));
      fd.app = app;
      return fd.nonblock ? err('EINPROGRESS') : 'block';
    }
    if (a.connecting) return fd.nonblock || !again ? err('EALREADY') : 'block';
    if (a.connected && again) return { ret: 0 };
    const e = this.takeError(a);
    if (e) return err(e);
    return a.connected ? err('EISCONN') : err('ECONNABORTED');
  }

  read(num: number, len: number, flags = 0): CallResult {
    const fd = this.get(num);
    if (!fd) return err('EBADF');
    const a = fd.app;
    if (!a) return err('ENOTCONN');
    if (flags & SYMBOLS['MSG_OOB']!) throw new Unsupported('MSG_OOB (netstack delivers urgent data inline, RFC 6093)');
    if (fd.shutRd) return { ret: 0 };
    const sock = a.sock;
    if (sock.readableLength > 0) {
      // Take chunks until `len` bytes or the stream has no more (each read() lets the stream
      // pull the next chunk from TCP); what is taken beyond `len` goes back in front.
      const chunks: Buffer[] = [];
      let got = 0;
      for (let i = 0; got < len && i < 100_000; i++) {
        const d = sock.read() as Buffer | null;
        if (!d || d.length === 0) break;
        chunks.push(d);
        got += d.length;
      }
      if (got > 0) {
        const data = Buffer.concat(chunks);
        const n = Math.min(len, data.length);
        // MSG_PEEK: put everything back.
        if (flags & SYMBOLS['MSG_PEEK']!) sock.unshift(data);
        else if (n < data.length) sock.unshift(data.subarray(n));
        return { ret: n };
      }
    }
    const e = this.takeError(a);
    if (e) return err(e);
    if (a.eof || a.error !== undefined) return { ret: 0 };
    if (a.connecting || !a.connected) return fd.nonblock || flags & SYMBOLS['MSG_DONTWAIT']! ? err('EAGAIN') : a.connecting ? 'block' : err('ENOTCONN');
    return fd.nonblock || flags & SYMBOLS['MSG_DONTWAIT']! ? err('EAGAIN') : 'block';
  }

  write(num: number, len: number, flags = 0): CallResult {
    const fd = this.get(num);
    if (!fd) return err('EBADF');
    const a = fd.app;
    if (!a) return err('EPIPE');
    if (flags & SYMBOLS['MSG_OOB']!) throw new Unsupported('sending urgent data (MSG_OOB)');
    const e = this.takeError(a);
    if (e) return err(e);
    if (fd.shutWr || a.error !== undefined || a.closed || a.sock.destroyed || a.sock.writableEnded) return err('EPIPE');
    if (a.connecting) return fd.nonblock || flags & SYMBOLS['MSG_DONTWAIT']! ? err('EAGAIN') : 'block';
    if (!a.connected) return err('EPIPE');
    if (a.sock.writableNeedDrain) return fd.nonblock || flags & SYMBOLS['MSG_DONTWAIT']! ? err('EAGAIN') : 'block';
    if (len > 0) a.sock.write(Buffer.alloc(len));
    return { ret: len };
  }

  shutdown(num: number, how: number): CallResult {
    const fd = this.get(num);
    if (!fd) return err('EBADF');
    const a = fd.app;
    if (!a || !a.connected) return err('ENOTCONN');
    if (how === SYMBOLS['SHUT_RD'] || how === SYMBOLS['SHUT_RDWR']) fd.shutRd = true;
    if (how === SYMBOLS['SHUT_WR'] || how === SYMBOLS['SHUT_RDWR']) {
      if (!fd.shutWr) a.sock.end();
      fd.shutWr = true;
    }
    if (how < 0 || how > 2) return err('EINVAL');
    return { ret: 0 };
  }

  close(num: number): CallResult {
    const fd = this.get(num);
    if (!fd) return err('EBADF');
    this.fds.delete(num);
    if (fd.server) {
      fd.server.close();
      // Connections established but never accepted are reset, as Linux does (inet_csk_listen_stop).
      for (const a of fd.queue) a.sock.destroy();
      return { ret: 0 };
    }
    const a = fd.app;
    if (!a) return { ret: 0 };
    a.closed = true;
    const sock = a.sock;
    if (sock.destroyed) return { ret: 0 };
    if (a.connecting || fd.linger0 || sock.readableLength > 0) {
      // Unread data or SO_LINGER 0: abort with RST (RFC 2525 §2.17); in SYN-SENT: just forget it.
      sock.destroy();
      return { ret: 0 };
    }
    if (sock.writableFinished) sock.destroy();
    else {
      sock.once('finish', () => sock.destroy());
      if (!sock.writableEnded) sock.end();
    }
    return { ret: 0 };
  }

  setsockopt(num: number, level: string, name: string, value: number | { onoff: number; linger: number }): CallResult {
    const fd = this.get(num);
    if (!fd) return err('EBADF');
    const int = typeof value === 'number' ? value : 0;
    const stackWide = (key: 'rcvBuf' | 'sndBuf' | 'initialRcvBuf' | 'initialSndBuf' | 'keepaliveInterval' | 'keepaliveCount', v: number): CallResult => {
      if (this.env.hasStack() && this.env.config[key] !== v) {
        throw new Unsupported(`${name} after the first listen/connect (netstack sets it for the whole stack, before it starts)`);
      }
      this.env.config[key] = v;
      return { ret: 0 };
    };
    switch (name) {
      case 'SO_REUSEADDR':
      case 'SO_REUSEPORT':
        return { ret: 0 };
      // Linux: a buffer size set by the application is locked (SOCK_RCVBUF_LOCK / SOCK_SNDBUF_LOCK):
      // tcp_rcv_space_adjust and tcp_sndbuf_expand leave it alone, so it starts at that size too.
      case 'SO_RCVBUF':
        stackWide('initialRcvBuf', int);
        return stackWide('rcvBuf', int);
      case 'SO_SNDBUF':
        stackWide('initialSndBuf', int);
        return stackWide('sndBuf', int);
      case 'TCP_KEEPINTVL':
        return stackWide('keepaliveInterval', int * 1000);
      case 'TCP_KEEPCNT':
        return stackWide('keepaliveCount', int);
      case 'TCP_NODELAY':
        fd.noDelay = int !== 0;
        fd.app?.sock.setNoDelay(fd.noDelay);
        return { ret: 0 };
      case 'SO_KEEPALIVE':
        fd.keepalive = int !== 0;
        if (fd.app?.connected) fd.app.sock.setKeepAlive(fd.keepalive, fd.keepIdleMs ?? 0);
        return { ret: 0 };
      case 'TCP_KEEPIDLE':
        fd.keepIdleMs = int * 1000;
        if (fd.keepalive && fd.app?.connected) fd.app.sock.setKeepAlive(true, fd.keepIdleMs);
        return { ret: 0 };
      case 'SO_LINGER':
        if (typeof value === 'number') return err('EINVAL');
        if (value.onoff && value.linger !== 0) throw new Unsupported('SO_LINGER with a timeout (only l_linger=0, the abortive close, is supported)');
        fd.linger0 = value.onoff !== 0;
        return { ret: 0 };
      default:
        throw new Unsupported(`setsockopt ${level} ${name}`);
    }
  }

  /** getsockopt: SO_ERROR (reported once, then cleared) and the flags set above. */
  getsockopt(num: number, name: string): CallResult {
    const fd = this.get(num);
    if (!fd) return err('EBADF');
    switch (name) {
      case 'SO_ERROR': {
        const e = fd.app ? this.takeError(fd.app) : fd.listenError;
        return { ret: 0, out: { value: e ? ERRNO[e]! : 0 } };
      }
      case 'TCP_NODELAY':
        return { ret: 0, out: { value: fd.noDelay ? 1 : 0 } };
      case 'SO_KEEPALIVE':
        return { ret: 0, out: { value: fd.keepalive ? 1 : 0 } };
      default:
        throw new Unsupported(`getsockopt ${name}`);
    }
  }

  fcntl(num: number, cmd: string, arg: number): CallResult {
    const fd = this.get(num);
    if (!fd) return err('EBADF');
    if (cmd === 'F_GETFL') return { ret: SYMBOLS['O_RDWR']! | (fd.nonblock ? SYMBOLS['O_NONBLOCK']! : 0) };
    if (cmd === 'F_SETFL') {
      fd.nonblock = (arg & SYMBOLS['O_NONBLOCK']!) !== 0;
      return { ret: 0 };
    }
    throw new Unsupported(`fcntl ${cmd}`);
  }

  /** SIOCINQ / FIONREAD: bytes the next read can take without blocking (what the stream holds). */
  inq(num: number): CallResult {
    const fd = this.get(num);
    if (!fd) return err('EBADF');
    if (!fd.app) return err('EINVAL');
    return { ret: 0, out: { value: fd.app.sock.readableLength } };
  }

  /** Let a socket's stream take what TCP holds (and notice EOF) before a call looks at it. */
  prime(num: number): void {
    const a = this.get(num)?.app;
    if (a && !a.sock.destroyed && a.sock.readableLength === 0 && (a.connected || a.eof)) a.sock.read(0);
  }

  primeAll(): void {
    for (const num of this.fds.keys()) this.prime(num);
  }

  /** poll(2) events for one fd. */
  revents(num: number, events: number): number {
    const fd = this.get(num);
    if (!fd) return SYMBOLS['POLLNVAL']!;
    let r = 0;
    const IN = SYMBOLS['POLLIN']! | SYMBOLS['POLLRDNORM']!;
    const OUT = SYMBOLS['POLLOUT']! | SYMBOLS['POLLWRNORM']!;
    if (fd.server) {
      if (fd.queue.length > 0) r |= IN;
      return r & (events | SYMBOLS['POLLERR']! | SYMBOLS['POLLHUP']!);
    }
    const a = fd.app;
    if (!a) return 0;
    if (a.sock.readableLength > 0 || a.eof || a.error !== undefined) r |= IN;
    if (a.eof) r |= SYMBOLS['POLLRDHUP']!;
    if (a.connected && !a.sock.writableNeedDrain && !fd.shutWr && a.error === undefined) r |= OUT;
    if (a.error !== undefined && !a.errorReported) r |= SYMBOLS['POLLERR']!;
    if (a.error !== undefined || (a.eof && fd.shutWr)) r |= SYMBOLS['POLLHUP']! | OUT;
    return r & (events | SYMBOLS['POLLERR']! | SYMBOLS['POLLHUP']! | SYMBOLS['POLLNVAL']!);
  }

  private takeError(a: AppSocket): string | undefined {
    if (a.error === undefined || a.errorReported) return undefined;
    a.errorReported = true;
    return a.error;
  }

  private track(sock: TcpSocket, connected: boolean): AppSocket {
    const a: AppSocket = { sock, connected, connecting: false, eof: false, error: undefined, errorReported: false, closed: false };
    sock.on('connect', () => {
      a.connecting = false;
      a.connected = true;
    });
    sock.on('end', () => (a.eof = true));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      a.connecting = false;
      a.error = e.code ?? 'EIO';
      // A socket the script already closed reports nothing.
      if (a.closed) a.errorReported = true;
    });
    return a;
  }
}

function err(name: string): CallResult {
  return { ret: -1, errno: name };
}
