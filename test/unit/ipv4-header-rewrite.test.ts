/**
 * Writing an IPv4 header (RFC 791 §3.1) into a buffer that is reused: whatever the checksum field
 * held before, the new header checksum verifies, and bytes outside the header stay as they were.
 */
import { describe, expect, it } from 'vitest';
import { internetChecksum } from '../../src/ip/checksum.js';
import { IPV4_HEADER_LEN, PROTO_TCP, writeIpv4Header } from '../../src/ip/ipv4.js';

describe('IPv4 header writer on a reused buffer', () => {
  it('ignores an old checksum in the field and touches only its 20 bytes', () => {
    const buf = new Uint8Array(64).fill(0xa5);
    const fields = { totalLength: 40, id: 7, protocol: PROTO_TCP, src: 0x0a000001, dst: 0x0a000002 };
    writeIpv4Header(buf, 12, fields);
    expect(internetChecksum(buf, 12, 12 + IPV4_HEADER_LEN)).toBe(0);
    expect([...buf.subarray(0, 12)]).toEqual(new Array(12).fill(0xa5));
    expect([...buf.subarray(32)]).toEqual(new Array(32).fill(0xa5));
    // Writing it again over itself (checksum field now non-zero) gives the same bytes.
    const first = buf.slice();
    writeIpv4Header(buf, 12, fields);
    expect(buf).toEqual(first);
  });
});
