/** IPv4 addresses as unsigned 32-bit numbers (fast to compare, hash and checksum). */

export type Ipv4Addr = number;

/** Parse dotted-quad text; returns undefined when it is not exactly four octets 0..255. */
export function parseIpv4(text: string): Ipv4Addr | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text.trim());
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return undefined;
    v = v * 256 + o;
  }
  return v >>> 0;
}

export function formatIpv4(a: Ipv4Addr): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** Parse "a.b.c.d/len". */
export function parseCidr(text: string): { addr: Ipv4Addr; prefix: number } | undefined {
  const [a, p, ...rest] = text.split('/');
  if (rest.length > 0 || a === undefined || p === undefined || !/^\d{1,2}$/.test(p)) return undefined;
  const addr = parseIpv4(a);
  const prefix = Number(p);
  if (addr === undefined || prefix < 1 || prefix > 32) return undefined;
  return { addr, prefix };
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function inSubnet(addr: Ipv4Addr, net: Ipv4Addr, prefix: number): boolean {
  const m = prefixMask(prefix);
  return ((addr & m) >>> 0) === ((net & m) >>> 0);
}

export function readIpv4(buf: Uint8Array, off: number): Ipv4Addr {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export function writeIpv4(buf: Uint8Array, off: number, a: Ipv4Addr): void {
  buf[off] = a >>> 24;
  buf[off + 1] = (a >>> 16) & 255;
  buf[off + 2] = (a >>> 8) & 255;
  buf[off + 3] = a & 255;
}

/** 224.0.0.0/4 (RFC 5771). */
export function isMulticast(a: Ipv4Addr): boolean {
  return a >>> 28 === 0xe;
}

/**
 * Whether `a` can be the source of a datagram from a single host (RFC 1122 section
 * 3.2.1.3): not 0.0.0.0, loopback 127/8, limited broadcast, multicast, or class E 240/4.
 */
export function isUnicastSource(a: Ipv4Addr): boolean {
  return a !== 0 && a >>> 24 !== 127 && a >>> 28 < 0xe;
}
