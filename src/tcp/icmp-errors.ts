/**
 * ICMP errors about segments we sent (RFC 1122 §4.2.3.9, RFC 5461, RFC 5927), once the layer has
 * found the connection and checked that the quoted sequence number is one we sent and is not yet
 * acknowledged (RFC 5927 §4.1): a forged error must first guess a live 4-tuple and a sequence
 * number within the flight.
 *
 *   - Port or protocol unreachable while we open (SYN-SENT): connect() fails at once, as Linux
 *     does, with its errno: ECONNREFUSED for the port, ENOPROTOOPT for the protocol. A SYN-ACK
 *     answered so is dropped: the listener forgets the attempt.
 *   - Fragmentation needed (RFC 1191): the path carries smaller packets; the sender lowers its MSS
 *     and sends again what was lost.
 *   - Everything else — and hard errors on a synchronized connection (RFC 5461 §3, RFC 5927 §4.2,
 *     and Linux) — is a soft error: remembered, and reported instead of ETIMEDOUT if the connection
 *     times out ("the cause of the failure", RFC 1122 §4.2.3.9).
 */
import { ICMP_DEST_UNREACHABLE, ICMP_PARAMETER_PROBLEM, UNREACH_FRAG_NEEDED, UNREACH_PORT, UNREACH_PROTOCOL } from '../ip/icmp.js';
import type { IcmpErrorInfo } from '../ip/layer.js';
import type { Connection, TcpErrorCode } from './connection.js';
import { TcpState, isSynchronized } from './state.js';

/** An error worth reporting if the connection later times out. */
export interface SoftError {
  code: TcpErrorCode;
  message: string;
}

/** Destination Unreachable codes that name a network rather than a host (RFC 792, RFC 1122 §3.2.2.1). */
const NET_CODES = new Set([0, 6, 9, 11]);

export function icmpErrorArrives(c: Connection, err: IcmpErrorInfo): void {
  if (err.type === ICMP_DEST_UNREACHABLE && err.code === UNREACH_FRAG_NEEDED) return c.snd.lowerPathMtu(err.mtu);
  if (refused(err) && !isSynchronized(c.state)) {
    const cause = `ICMP ${err.code === UNREACH_PORT ? 'port' : 'protocol'} unreachable in ${c.state}`;
    c.host.count('tcp.icmp.refused');
    if (c.state === TcpState.SYN_RECEIVED && !c.activeOpen) return c.toClosed(cause);
    const e = softError(err);
    return c.fail(e.code, e.message, cause);
  }
  c.host.count('tcp.icmp.soft-error');
  c.softError = softError(err);
}

function refused(err: IcmpErrorInfo): boolean {
  return err.type === ICMP_DEST_UNREACHABLE && (err.code === UNREACH_PORT || err.code === UNREACH_PROTOCOL);
}

/** The errno Linux gives each error (its icmp_err_convert table, for the codes RFC 1122 names). */
function softError(err: IcmpErrorInfo): SoftError {
  if (err.type === ICMP_PARAMETER_PROBLEM) return { code: 'EPROTO', message: 'protocol error' };
  if (err.type === ICMP_DEST_UNREACHABLE && err.code === UNREACH_PORT) return { code: 'ECONNREFUSED', message: 'connection refused' };
  if (err.type === ICMP_DEST_UNREACHABLE && err.code === UNREACH_PROTOCOL) return { code: 'ENOPROTOOPT', message: 'protocol not available' };
  if (err.type === ICMP_DEST_UNREACHABLE && NET_CODES.has(err.code)) return { code: 'ENETUNREACH', message: 'network is unreachable' };
  return { code: 'EHOSTUNREACH', message: 'no route to host' };
}
