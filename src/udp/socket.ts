/**
 * `dgram.Socket`-like UDP sockets on the stack: bind, send, connect, 'message', 'error',
 * close, address. Runtime side (like src/tcp/socket.ts): it reads the stack's clock and
 * asks the stack to flush after each send, so a datagram sent outside a received batch
 * (from a timer, a resolved promise, user code) leaves at once instead of waiting for
 * other traffic to carry it out.
 */
import { EventEmitter } from 'node:events';
import { ICMP_DEST_UNREACHABLE, ICMP_PARAMETER_PROBLEM, UNREACH_PORT, UNREACH_PROTOCOL } from '../ip/icmp.js';
import type { IcmpErrorInfo } from '../ip/layer.js';
import { parseIpv4 } from '../ip/addr.js';
import type { RemoteInfo, UdpBinding, UdpLayer, UdpRuntime } from './layer.js';

export interface UdpSocketOptions {
  type: 'udp4';
}

/** What 'message' listeners get, as in Node's dgram. */
export interface UdpRemoteInfo {
  address: string;
  family: 'IPv4';
  port: number;
  size: number;
}

export interface UdpAddressInfo {
  address: string;
  family: 'IPv4';
  port: number;
}

type SendCallback = (err: Error | null, bytes?: number) => void;

/**
 * The ICMP errors Linux turns into a socket error on a connected UDP socket: the "hard"
 * ones of icmp_err_convert[] (net/ipv4/icmp.c) and Parameter Problem; the soft ones (net or
 * host unreachable, TTL exceeded) are ignored unless IP_RECVERR is set, which we lack.
 */
function hardIcmpError(err: IcmpErrorInfo): string | undefined {
  if (err.type === ICMP_PARAMETER_PROBLEM) return 'EPROTO';
  if (err.type !== ICMP_DEST_UNREACHABLE) return undefined;
  switch (err.code) {
    case UNREACH_PORT:
      return 'ECONNREFUSED';
    case UNREACH_PROTOCOL:
      return 'ENOPROTOOPT';
    case 5: // source route failed
      return 'EOPNOTSUPP';
    case 9: // network administratively prohibited
    case 10: // host administratively prohibited
    case 13: // communication administratively prohibited (RFC 1812)
      return 'EACCES';
    default:
      return undefined;
  }
}

export class UdpSocket extends EventEmitter {
  private binding: UdpBinding | undefined;
  private remote: RemoteInfo | undefined;
  private closed = false;

  constructor(
    private readonly layer: UdpLayer,
    private readonly rt: UdpRuntime,
    opts: UdpSocketOptions = { type: 'udp4' },
  ) {
    super();
    if (opts.type !== 'udp4') throw codeError('ERR_SOCKET_BAD_TYPE', `unsupported socket type ${String(opts.type)}: the stack speaks IPv4 only`);
  }

  /**
   * Bind to `port` (0 or absent: a free ephemeral port). `address`, when given, must be the
   * stack's own address or 0.0.0.0. 'listening' (and `cb`) follow asynchronously, as in Node;
   * a port in use is an 'error' (EADDRINUSE).
   */
  bind(port?: number | (() => void), address?: string | (() => void), cb?: () => void): this {
    if (typeof port === 'function') [cb, port] = [port, 0];
    if (typeof address === 'function') [cb, address] = [address, undefined];
    this.checkOpen();
    if (this.binding) throw codeError('ERR_SOCKET_ALREADY_BOUND', 'the socket is already bound');
    if (cb) this.once('listening', cb);
    try {
      if (address !== undefined && address !== '0.0.0.0' && address !== this.layer.address) {
        throw codeError('EADDRNOTAVAIL', `cannot bind to ${address}: the stack's address is ${this.layer.address}`);
      }
      this.doBind(port ?? 0);
      this.rt.clock.defer(() => this.emit('listening'));
    } catch (err) {
      this.rt.clock.defer(() => this.emit('error', err));
    }
    return this;
  }

  /**
   * Send one datagram. With a connected socket, `port` and `address` are left out.
   * Errors go to `cb` when given, else to 'error', as in Node.
   */
  send(msg: Uint8Array | string, port?: number | SendCallback, address?: string | SendCallback, cb?: SendCallback): void {
    if (typeof port === 'function') [cb, port] = [port, undefined];
    if (typeof address === 'function') [cb, address] = [address, undefined];
    const data = typeof msg === 'string' ? Buffer.from(msg) : msg;
    try {
      this.checkOpen();
      let to: RemoteInfo;
      if (this.remote) {
        if (port !== undefined || address !== undefined) throw codeError('ERR_SOCKET_DGRAM_IS_CONNECTED', 'the socket is connected: send without port and address');
        to = this.remote;
      } else {
        if (port === undefined) throw codeError('ERR_SOCKET_DGRAM_NOT_CONNECTED', 'the socket is not connected: give a port and an address');
        to = { port, address: address ?? '127.0.0.1' };
      }
      if (!this.binding) this.doBind(0);
      this.layer.send(data, to.port, to.address, this.binding!.port, this.rt.clock.now());
      this.rt.kick();
      if (cb) this.rt.clock.defer(() => cb(null, data.length));
    } catch (err) {
      if (cb) this.rt.clock.defer(() => cb(err as Error));
      else this.rt.clock.defer(() => this.emit('error', err));
    }
  }

  /**
   * Associate the socket with one peer, as connect(2) does: sends go there, datagrams from
   * anyone else are dropped, and ICMP errors about our datagrams become socket errors.
   */
  connect(port: number, address?: string | (() => void), cb?: () => void): void {
    if (typeof address === 'function') [cb, address] = [address, undefined];
    this.checkOpen();
    if (this.remote) throw codeError('ERR_SOCKET_DGRAM_IS_CONNECTED', 'the socket is already connected');
    const addr = address ?? '127.0.0.1';
    if (parseIpv4(addr) === undefined) throw codeError('EINVAL', `bad IPv4 address ${JSON.stringify(addr)}`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw codeError('ERR_SOCKET_BAD_PORT', `bad port ${port}`);
    if (cb) this.once('connect', cb);
    try {
      if (!this.binding) this.doBind(0);
      this.remote = { address: addr, port };
      this.rt.clock.defer(() => this.emit('connect'));
    } catch (err) {
      this.rt.clock.defer(() => this.emit('error', err));
    }
  }

  disconnect(): void {
    if (!this.remote) throw codeError('ERR_SOCKET_DGRAM_NOT_CONNECTED', 'the socket is not connected');
    this.remote = undefined;
  }

  address(): UdpAddressInfo {
    if (!this.binding || this.closed) throw codeError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'the socket is not bound');
    return { address: this.layer.address, family: 'IPv4', port: this.binding.port };
  }

  remoteAddress(): UdpAddressInfo {
    if (!this.remote) throw codeError('ERR_SOCKET_DGRAM_NOT_CONNECTED', 'the socket is not connected');
    return { address: this.remote.address, family: 'IPv4', port: this.remote.port };
  }

  /** Release the port; 'close' follows asynchronously. Idempotent for the port. */
  close(cb?: () => void): this {
    if (this.closed) throw codeError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'the socket is already closed');
    this.closed = true;
    if (cb) this.once('close', cb);
    this.binding?.close();
    this.rt.clock.defer(() => this.emit('close'));
    return this;
  }

  // No kernel objects to keep alive: present for dgram compatibility.
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  private doBind(port: number): void {
    this.binding = this.layer.bind(
      port,
      (data, rinfo) => this.onDatagram(data, rinfo),
      (err, to) => this.onIcmpError(err, to),
    );
  }

  private onDatagram(data: Uint8Array, rinfo: RemoteInfo): void {
    // connect(2) on a UDP socket filters what recv() sees to the connected peer.
    if (this.remote && (rinfo.address !== this.remote.address || rinfo.port !== this.remote.port)) return;
    // Copy: `data` is a view into the packet, which the link may reuse.
    const buf = Buffer.from(data);
    this.emit('message', buf, { address: rinfo.address, family: 'IPv4', port: rinfo.port, size: buf.length } satisfies UdpRemoteInfo);
  }

  /** Linux (__udp4_lib_err): a hard ICMP error reaches a connected socket whose peer it names. */
  private onIcmpError(err: IcmpErrorInfo, to: RemoteInfo): void {
    if (!this.remote || to.address !== this.remote.address || to.port !== this.remote.port) return;
    const code = hardIcmpError(err);
    if (!code) return;
    const e = codeError(code, `${code === 'ECONNREFUSED' ? 'connection refused' : 'ICMP error'}: ${to.address}:${to.port} (ICMP type ${err.type} code ${err.code})`);
    Object.assign(e, { syscall: 'recvmsg', address: to.address, port: to.port });
    this.emit('error', e);
  }

  private checkOpen(): void {
    if (this.closed) throw codeError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'the socket is closed');
  }
}

function codeError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}
