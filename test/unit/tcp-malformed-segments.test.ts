/**
 * Malformed TCP segments from the wire (RFC 9293 §3.1, §3.10.7; RFC 1122 §4.2.2.5): a segment
 * shorter than a header, a data offset outside 5..(segment length / 4) words, a wrong checksum, or
 * port 0 is dropped silently and counted by reason (`tcp.drop.<reason>`); the listener answers the
 * next good SYN as if nothing happened. A malformed option spoils only itself: the segment is
 * processed without it, and counted (`tcp.bad-option`). With offload the kernel vouches for the
 * checksum (DATA_VALID), so it is not summed again.
 */
import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../../src/ip/addr.js';
import type { Ipv4Header } from '../../src/ip/ipv4.js';
import { SYN, ACK, writeTcp } from '../../src/tcp/segment.js';
import { PEER_ADDR, STACK_ADDR, scriptHost } from '../helpers/script.js';

const peer = parseIpv4(PEER_ADDR)!;
const us = parseIpv4(STACK_ADDR)!;
const ip = { src: peer, dst: us, protocol: 6 } as Ipv4Header;

/** A well-formed SYN from 40000 to 8080 (20-byte header, MSS option: 24 bytes). */
function syn(srcPort = 40000): Uint8Array {
  const b = new Uint8Array(24);
  writeTcp(b, 0, { srcPort, dstPort: 8080, seq: 1000, ack: 0, flags: SYN, window: 65535, options: { mss: 1460 } }, 0, peer, us);
  return b;
}

function listening() {
  const h = scriptHost();
  h.stack.tcp.listen(8080);
  const deliver = async (seg: Uint8Array, trusted = false) => {
    h.stack.tcp.receive(ip, seg, h.clock.now(), trusted);
    h.stack.kick();
    await h.settle();
  };
  const synAcks = () => h.out.filter((c) => c.seg?.flags === (SYN | ACK)).length;
  return { h, deliver, synAcks };
}

describe('malformed TCP segments', () => {
  it('are dropped without a reply and counted by reason; a good SYN afterwards is answered', async () => {
    const { h, deliver, synAcks } = listening();
    await deliver(syn().subarray(0, 19)); // shorter than a header
    const shortOffset = syn();
    shortOffset[12] = 4 << 4; // 16 bytes: less than the fixed header
    await deliver(shortOffset);
    const longOffset = syn();
    longOffset[12] = 15 << 4; // 60 bytes: past the 24-byte segment
    await deliver(longOffset);
    const corrupt = syn();
    corrupt[4]! ^= 0x01; // a bit flipped in the sequence number: the checksum no longer adds up
    await deliver(corrupt);
    await deliver(syn(0)); // source port 0 (written with a valid checksum)
    expect(h.out).toEqual([]);
    const st = h.stack.stats();
    expect([st['tcp.drop.truncated'], st['tcp.drop.bad-data-offset'], st['tcp.drop.bad-checksum'], st['tcp.drop.bad-ports']]).toEqual([1, 2, 1, 1]);
    expect(st['tcp.in']).toBe(5);
    await deliver(syn());
    expect(synAcks()).toBe(1);
  });

  it('with offload a segment the kernel vouches for is not checksummed again; one it does not vouch for is', async () => {
    const { h, deliver, synAcks } = listening();
    const noSum = syn(40001);
    noSum[16] = 0; // checksum field left as a partial sum would be: only the kernel checked it
    noSum[17] = 0;
    await deliver(noSum, true);
    expect(synAcks()).toBe(1);
    await deliver(noSum.slice(), false);
    expect(synAcks()).toBe(1);
    const st = h.stack.stats();
    expect([st['tcp.in.csum-offloaded'], st['tcp.drop.bad-checksum']]).toEqual([1, 1]);
  });

  it('a malformed option is ignored, not the segment: the SYN is answered and the option counted', async () => {
    const { h, deliver, synAcks } = listening();
    const b = new Uint8Array(24);
    // Options: MSS with a length of 3 (it must be 4): malformed, the rest of the option space is skipped.
    writeTcp(b, 0, { srcPort: 40002, dstPort: 8080, seq: 1000, ack: 0, flags: SYN, window: 65535, options: { mss: 1460 } }, 0, peer, us);
    b[21] = 3;
    await deliver(b, true); // the checksum is not what this case is about: taken as vouched for
    expect(synAcks()).toBe(1);
    expect(h.stack.stats()['tcp.bad-option']).toBe(1);
  });
});
