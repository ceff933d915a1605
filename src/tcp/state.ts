/** The eleven connection states of RFC 9293 §3.3.2. Values are the RFC's own spelling. */
export const TcpState = {
  CLOSED: 'CLOSED',
  LISTEN: 'LISTEN',
  SYN_SENT: 'SYN-SENT',
  SYN_RECEIVED: 'SYN-RECEIVED',
  ESTABLISHED: 'ESTABLISHED',
  FIN_WAIT_1: 'FIN-WAIT-1',
  FIN_WAIT_2: 'FIN-WAIT-2',
  CLOSE_WAIT: 'CLOSE-WAIT',
  CLOSING: 'CLOSING',
  LAST_ACK: 'LAST-ACK',
  TIME_WAIT: 'TIME-WAIT',
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

/** States in which both sides' ISNs are known (RFC 9293 §3.10.7.4: "synchronized states"). */
export function isSynchronized(s: TcpState): boolean {
  return s !== TcpState.CLOSED && s !== TcpState.LISTEN && s !== TcpState.SYN_SENT && s !== TcpState.SYN_RECEIVED;
}

/** States in which arriving text is delivered to the user (RFC 9293 §3.10.7.4, seventh). */
export function canReceiveData(s: TcpState): boolean {
  return s === TcpState.ESTABLISHED || s === TcpState.FIN_WAIT_1 || s === TcpState.FIN_WAIT_2;
}
