/**
 * Ethernet II frames (DIX; IEEE 802.3 clause 3 with a Type field), as a TAP device carries
 * them: no preamble, no frame check sequence (the NIC or the kernel handles those).
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |               Destination MAC address (6 bytes)               |
 *    +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                               |                               |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
 *    |                 Source MAC address (6 bytes)                  |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |      EtherType (0x0800 IPv4, 0x0806 ARP)      |  payload ...
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The minimum frame is 64 bytes with the 4-byte FCS, so 60 without it: shorter frames are
 * padded with zeros on output, and on input the padding is simply part of the payload (the
 * IPv4 total length and the ARP fixed size say where the real data ends).
 *
 * A Type/Length value below 0x0600 is an IEEE 802.3 length (LLC frames), not an EtherType.
 * Sans-I/O: only byte codecs and address helpers here.
 */

export const ETH_HEADER_LEN = 14;
/** Smallest frame without the FCS (IEEE 802.3 minimum of 64 bytes, minus 4). */
export const ETH_MIN_FRAME = 60;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
/** IEEE 802.1Q VLAN tag and 802.1ad (QinQ) service tag: we are not VLAN-aware. */
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
/** Values below this are an 802.3 length, not a type (IEEE 802.3 clause 3.2.6). */
const ETHERTYPE_MIN = 0x0600;

/** A MAC address: 6 bytes. */
export type Mac = Uint8Array;

export const BROADCAST_MAC: Mac = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
export const ZERO_MAC: Mac = new Uint8Array(6);

export interface EthernetFrame {
  dst: Mac;
  src: Mac;
  etherType: number;
  /** Everything after the header, padding included (a view). */
  payload: Uint8Array;
}

export type EthernetDropReason = 'short' | 'vlan' | 'llc' | 'ethertype' | 'bad-src';

/**
 * Decode a frame. Never throws; the addresses and payload are views into `buf`.
 * Only the Ethernet II header is checked here: whether the frame is for us, and whether
 * its EtherType is one we speak, is the caller's business (see EthernetLayer).
 */
export function parseEthernet(buf: Uint8Array): EthernetFrame | { error: EthernetDropReason } {
  if (buf.length < ETH_HEADER_LEN) return { error: 'short' };
  const etherType = (buf[12]! << 8) | buf[13]!;
  if (etherType < ETHERTYPE_MIN) return { error: 'llc' };
  if (etherType === ETHERTYPE_VLAN || etherType === ETHERTYPE_QINQ) return { error: 'vlan' };
  const src = buf.subarray(6, 12);
  // A source address is one station: its group (I/G) bit is never set (IEEE 802.3 3.2.3).
  if (isGroupMac(src)) return { error: 'bad-src' };
  return { dst: buf.subarray(0, 6), src, etherType, payload: buf.subarray(ETH_HEADER_LEN) };
}

/**
 * A new frame around `payload`: header, then the payload copied, zero-padded to 60 bytes.
 * (The copy is what TAP mode costs over TUN: the IP layer's packets have no headroom for a
 * link header.)
 */
export function buildEthernet(dst: Mac, src: Mac, etherType: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(Math.max(ETH_MIN_FRAME, ETH_HEADER_LEN + payload.length));
  frame.set(dst, 0);
  frame.set(src, 6);
  frame[12] = etherType >>> 8;
  frame[13] = etherType & 0xff;
  frame.set(payload, ETH_HEADER_LEN);
  return frame;
}

/** The group bit (I/G, least significant bit of the first octet): broadcast or multicast. */
export function isGroupMac(m: Mac): boolean {
  return (m[0]! & 1) === 1;
}

export function isBroadcastMac(m: Mac): boolean {
  return m[0] === 0xff && m[1] === 0xff && m[2] === 0xff && m[3] === 0xff && m[4] === 0xff && m[5] === 0xff;
}

export function macEquals(a: Mac, b: Mac): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3] && a[4] === b[4] && a[5] === b[5];
}

export function isZeroMac(m: Mac): boolean {
  return (m[0]! | m[1]! | m[2]! | m[3]! | m[4]! | m[5]!) === 0;
}

/** "02:1a:..:.." */
export function formatMac(m: Mac): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + m[i]!.toString(16).padStart(2, '0');
  return s;
}

/** Parse "02:00:5e:10:00:01" (or with '-'); undefined unless exactly six hex octets. */
export function parseMac(text: string): Mac | undefined {
  const parts = text.trim().split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) return undefined;
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/**
 * A locally administered unicast address from 6 random bytes (IEEE 802: the U/L bit, 0x02
 * of the first octet, set; the I/G bit, 0x01, clear), as Linux gives a new TAP or veth.
 */
export function localMac(random6: Uint8Array): Mac {
  const m = Uint8Array.from(random6.subarray(0, 6));
  m[0] = (m[0]! & 0xfc) | 0x02;
  return m;
}

/** RFC 1112 section 6.4: an IPv4 multicast group's MAC is 01:00:5e + its low 23 bits. */
export function multicastMac(group: number): Mac {
  return new Uint8Array([0x01, 0x00, 0x5e, (group >>> 16) & 0x7f, (group >>> 8) & 0xff, group & 0xff]);
}
