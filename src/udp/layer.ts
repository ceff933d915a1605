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
import type { IpLayer, IpUpper } from '../ip/layer.js';
import { EPHEMERAL_FIRST, EPHEMERAL_LAST, findEphemeralPort } from '../ip/ports.js';
import { Counters } from '../ip/stats.js';
import { parseUdp, UDP_HEADER_LEN, writeUdp } from './udp.js';

export interface RemoteInfo {
  address: string;
  port: number;
}

/** `data` is a view into the received packet: copy it if you keep it past the call. */
export type UdpMessageHandler = (data: Uint8Array, rinfo: RemoteInfo) => void;

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
  private readonly handlers = new Map<number, UdpMessageHandler>();
  private readonly counters = new Counters(['udp.in', 'udp.out', 'udp.delivered', 'udp.drop.no-port']);
  private readonly log: Logger | undefined;
  private nextEphemeral = EPHEMERAL_FIRST;

  constructor(
    private readonly ip: UdpIp,
    opts: { log?: Logger } = {},
  ) {
    this.log = opts.log;
  }

  /** Receive datagrams sent to local `port` (0 picks a free ephemeral port). */
  bind(port: number, onMessage: UdpMessageHandler): UdpBinding {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw udpError('EINVAL', `bad port ${port}`);
    const p = port === 0 ? this.freeEphemeralPort() : port;
    if (this.handlers.has(p)) throw udpError('EADDRINUSE', `UDP port ${p} is already bound`);
    this.handlers.set(p, onMessage);
    let open = true;
    return {
      port: p,
      close: () => {
        if (open && this.handlers.get(p) === onMessage) this.handlers.delete(p);
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
