/**
 * SYN-ACK retransmissions of half-open connections (RFC 9293 §3.8.1 retransmits the SYN-ACK like any
 * segment). Linux retries tcp_synack_retries (5) times, and fewer — down to 2 — once the SYN queue is
 * more than half full, so that a SYN flood's dead entries leave the queue sooner. netstack does the
 * same: up to synRetries, and SYNACK_RETRIES_UNDER_PRESSURE (2) while more than half of the SYN
 * queue (at least 4 entries) is taken.
 */
import { describe, expect, it } from 'vitest';
import { SYN, ACK } from '../../src/tcp/segment.js';
import { SYNACK_RETRIES_UNDER_PRESSURE } from '../../src/tcp/listener.js';
import { scriptHost } from '../helpers/script.js';

/** `clients` half-open connections (SYNs that never complete) on a listener with backlog 8; then a minute passes. */
async function halfOpen(clients: number) {
  const h = scriptHost({ tcp: { synRetries: 5 } });
  h.stack.tcp.listen(h.localPort, 8);
  for (let i = 0; i < clients; i++) {
    h.peerPort = 40000 + i;
    h.inject('S 0:0(0) win 65535 <mss 1460>');
    await h.settle();
  }
  await h.clock.sleep(120_000);
  const synAcks = new Map<number, number>();
  for (const c of h.out) {
    if (c.seg && c.seg.flags === (SYN | ACK)) synAcks.set(c.seg.dstPort, (synAcks.get(c.seg.dstPort) ?? 0) + 1);
  }
  return { synAcks: [...synAcks.values()], left: h.stack.tcp.connectionList().length };
}

describe('SYN-ACK retransmissions', () => {
  it('four half-open connections of a backlog of 8 (half the queue): each SYN-ACK is retried synRetries (5) times', async () => {
    const { synAcks, left } = await halfOpen(4);
    expect(synAcks).toEqual([6, 6, 6, 6]);
    expect(left).toBe(0);
  });

  it('a full queue (8): retried only twice while more than half is taken — four give up, then the other four have room for all five', async () => {
    const { synAcks, left } = await halfOpen(8);
    const cut = 1 + SYNACK_RETRIES_UNDER_PRESSURE;
    expect(synAcks.sort((a, b) => a - b)).toEqual([cut, cut, cut, cut, 6, 6, 6, 6]);
    expect(left).toBe(0);
  });
});
