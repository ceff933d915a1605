/**
 * The state predicates segment arrival relies on: the "synchronized states" of RFC 9293 §3.10.7.4
 * (both ISNs known), and the states in which the seventh step delivers segment text.
 */
import { describe, expect, it } from 'vitest';
import { TcpState, canReceiveData, isSynchronized } from '../../src/tcp/state.js';

describe('TCP states (RFC 9293 §3.3.2, §3.10.7.4)', () => {
  it('every state from ESTABLISHED on is synchronized; CLOSED, LISTEN, SYN-SENT and SYN-RECEIVED are not', () => {
    const synchronized = Object.values(TcpState).filter(isSynchronized);
    expect(synchronized).toEqual(['ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', 'CLOSING', 'LAST-ACK', 'TIME-WAIT']);
  });

  it('text is delivered in ESTABLISHED, FIN-WAIT-1 and FIN-WAIT-2 only (after the peer FIN it "should not occur")', () => {
    expect(Object.values(TcpState).filter(canReceiveData)).toEqual(['ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2']);
  });
});
