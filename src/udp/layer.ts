/**
 * UDP sockets on top of IpLayer: a table from local port to handler. Datagrams to a port
 * nobody bound get ICMP Port Unreachable (RFC 1122 section 4.1.3.1).
 * Sans-I/O like the IP layer: time arrives as `now`.
 */
import type { Logger } from 'pino';
import { formatIpv4, parseIpv4 } from '../ip/addr.js';
import { UNREACH_PORT } from '../ip/icmp.js';
import { IPV4_HEADER_LEN, PROTO_UDP } from '../ip/ipv4.js';
import type { Ipv4Header } from '../ip/ipv4.js';
import type { IcmpErrorInfo, IpLayer, IpUpper } from '../ip/layer.js';
import { EPHEMERAL_FIRST, EPHEMERAL_LAST, findEphemeralPort } from '../ip/ports.js';
import type { Clock } from '../runtime/clock.js';
import { UdpSocket } from './socket.js';
import type { UdpSocketOptions } from './socket.js';
import { Counters } from '../ip/stats.js';
import { parseUdp, UDP_HEADER_LEN, writeUdp } from './udp.js';
import { FreshMap } from '../runtime/fresh-map.js';

export interface RemoteInfo {
  address: string;
  port: number;
}

/** `data` is a view into the received packet: copy it if you keep it past the call. */
export type UdpMessageHandler = (data: Uint8Array, rinfo: RemoteInfo) => void;

/** An ICMP error about a datagram sent from a bound port, with the destination it was sent to. */
export type UdpErrorHandler = (err: IcmpErrorInfo, to: RemoteInfo, now: number) => void;

/** What dgram-style sockets need from the runtime: its clock and a prompt flush. */
export interface UdpRuntime {
  readonly clock: Clock;
  /** Flush queued output soon (a send outside a received batch must not wait for traffic). */
  kick(): void;
}

export interface UdpBinding {
  readonly port: number;
  /** Release the port. Idempotent. */
  close(): void;
}

/** The part of IpLayer that UDP uses. */
export type UdpIp = Pick<IpLayer, 'addr' | 'mtu' | 'send' | 'sendUnreachable'>;

/** Largest UDP data that fits one IPv4 datagram: 65535 - 20 - 8. */
export const UDP_MAX_PAYLOAD = 65535 - IPV4_HEADER_LEN - UDP_HEADER_LEN;

export class UdpLayer implements IpUpper {
  private readonly handlers = new FreshMap<number, UdpMessageHandler>();
  private readonly errorHandlers = new FreshMap<number, UdpErrorHandler>();
  private readonly counters = new Counters(['udp.in', 'udp.out', 'udp.delivered', 'udp.drop.no-port', 'udp.icmp-error.in']);
  private readonly log: Logger | undefined;
  private readonly runtime: UdpRuntime | undefined;
  private nextEphemeral = EPHEMERAL_FIRST;

  constructor(
    private readonly ip: UdpIp,
    opts: { log?: Logger | undefined; runtime?: UdpRuntime } = {},
  ) {
    this.log = opts.log;
    this.runtime = opts.runtime;
  }

  /** The stack's address, as text (what a socket's address() reports). */
  get address(): string {
    return formatIpv4(this.ip.addr);
  }

  /** A `dgram.Socket`-like socket on this stack (needs the runtime the Stack passes in). */
  createSocket(opts?: 'udp4' | UdpSocketOptions, onMessage?: (msg: Buffer, rinfo: import('./socket.js').UdpRemoteInfo) => void): UdpSocket {
    if (!this.runtime) throw udpError('EINVAL', 'createSocket needs a UdpLayer created by a Stack');
    const socket = new UdpSocket(this, this.runtime, typeof opts === 'object' ? opts : { type: 'udp4' });
    if (onMessage) socket.on('message', onMessage);
    return socket;
  }

  /**
   * Receive datagrams sent to local `port` (0 picks a free ephemeral port); `onError` hears
   * ICMP errors about datagrams sent from it.
   */
  bind(port: number, onMessage: UdpMessageHandler, onError?: UdpErrorHandler): UdpBinding {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw udpError('EINVAL', `bad port ${port}`);
    const p = port === 0 ? this.freeEphemeralPort() : port;
    if (this.handlers.has(p)) throw udpError('EADDRINUSE', `UDP port ${p} is already bound`);
    this.handlers.set(p, onMessage);
    if (onError) this.errorHandlers.set(p, onError);
    let open = true;
    return {
      port: p,
      close: () => {
        if (open && this.handlers.get(p) === onMessage) {
          this.handlers.delete(p);
          this.errorHandlers.delete(p);
        }
        open = false;
      },
    };
  }

  /** Send `data` from local `srcPort` to `address`:`port`. Large datagrams are fragmented by IP. */
  send(data: Uint8Array, port: number, address: string, srcPort: number, now: number): void {
    const dst = parseIpv4(address);
    if (dst === undefined) throw udpError('EINVAL', `bad IPv4 address ${JSON.stringify(address)}`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw udpError('EINVAL', `bad port ${port}`);
    if (!Number.isInteger(srcPort) || srcPort < 0 || srcPort > 65535) throw udpError('EINVAL', `bad port ${srcPort}`);
    if (data.length > UDP_MAX_PAYLOAD) throw udpError('EMSGSIZE', `UDP data of ${data.length} bytes exceeds ${UDP_MAX_PAYLOAD}`);
    const packet = new Uint8Array(IPV4_HEADER_LEN + UDP_HEADER_LEN + data.length);
    packet.set(data, IPV4_HEADER_LEN + UDP_HEADER_LEN);
    writeUdp(packet, IPV4_HEADER_LEN, { srcPort, dstPort: port, payloadLength: data.length, src: this.ip.addr, dst });
    this.counters.inc('udp.out');
    // Like Linux's default (IP_PMTUDISC_WANT): DF when it fits, fragment when it does not.
    this.ip.send(packet, dst, PROTO_UDP, now, { df: packet.length <= this.ip.mtu });
  }

  receive(header: Ipv4Header, payload: Uint8Array, now: number): void {
    this.counters.inc('udp.in');
    const d = parseUdp(payload, header.src, header.dst);
    if ('error' in d) {
      this.counters.inc('udp.drop.' + d.error);
      if (this.log?.isLevelEnabled('debug')) this.log.debug({ reason: d.error, src: formatIpv4(header.src) }, 'udp drop');
      return;
    }
    const handler = this.handlers.get(d.dstPort);
    if (!handler) {
      this.counters.inc('udp.drop.no-port');
      if (this.log?.isLevelEnabled('debug')) this.log.debug({ port: d.dstPort, src: formatIpv4(header.src) }, 'udp no port');
      this.ip.sendUnreachable(UNREACH_PORT, header, payload, now);
      return;
    }
    this.counters.inc('udp.delivered');
    handler(d.payload, { address: formatIpv4(header.src), port: d.srcPort });
  }

  /**
   * An ICMP error quoting a datagram we sent: find the port it left from (the quoted UDP
   * header's source port) and tell its owner. Whether it becomes a socket error is the
   * socket's decision (Linux reports it only on connected sockets).
   */
  onIcmpError(err: IcmpErrorInfo, now: number): void {
    this.counters.inc('udp.icmp-error.in');
    const q = err.quoted;
    const srcPort = (q[0]! << 8) | q[1]!;
    const dstPort = (q[2]! << 8) | q[3]!;
    const handler = this.errorHandlers.get(srcPort);
    if (!handler) return this.counters.inc('udp.icmp-error.no-port');
    handler(err, { address: formatIpv4(err.dst), port: dstPort }, now);
  }

  stats(): Record<string, number> {
    return this.counters.snapshot();
  }

  private freeEphemeralPort(): number {
    // Sequential from the last port given out, so a port just released is not reused at once.
    const p = findEphemeralPort(this.nextEphemeral - EPHEMERAL_FIRST, (port) => !this.handlers.has(port));
    if (p === undefined) throw udpError('EADDRINUSE', 'no free ephemeral UDP port');
    this.nextEphemeral = p === EPHEMERAL_LAST ? EPHEMERAL_FIRST : p + 1;
    return p;
  }
}

function udpError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}
