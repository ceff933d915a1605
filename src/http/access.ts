/**
 * Who may see connection details on the pages of `netstack up`.
 *
 * A connection's 4-tuple with its exact SND.NXT and RCV.NXT is all an attacker needs to
 * reset it or inject data into it: RFC 5961's defences assume the numbers are secret. So
 * exact sequence values, and the 4-tuples of other clients, go only to the host side of
 * the link (the `--host` address) and to the `--admin` networks; everyone else gets counts.
 */
import { parseIpv4, prefixMask } from '../ip/addr.js';
import type { Ipv4Addr } from '../ip/addr.js';

/** Decides from a request's remote address whether it may see connection details. */
export type CanSeeDetails = (remoteAddr: string) => boolean;

export interface Network {
  addr: Ipv4Addr;
  /** 0..32; 0 matches every address. */
  prefix: number;
}

/**
 * Parse `a.b.c.d/len` (len 0..32) or a bare `a.b.c.d` (one address, /32). Undefined when
 * it is neither. Host bits are allowed and ignored (`10.0.0.7/8` is 10.0.0.0/8), as `ip` does.
 */
export function parseNetwork(text: string): Network | undefined {
  const m = /^([0-9.]+)(?:\/(\d{1,2}))?$/.exec(text.trim());
  if (!m) return undefined;
  const addr = parseIpv4(m[1]!);
  const prefix = m[2] === undefined ? 32 : Number(m[2]);
  if (addr === undefined || prefix > 32) return undefined;
  return { addr: (addr & prefixMask(prefix)) >>> 0, prefix };
}

/**
 * The remote address of a socket as an IPv4 number. Kernel sockets on a dual-stack
 * listener report IPv4 peers as `::ffff:a.b.c.d`; netstack's own report dotted quads.
 */
export function remoteIpv4(remoteAddr: string | undefined): Ipv4Addr | undefined {
  if (remoteAddr === undefined) return undefined;
  const v4 = remoteAddr.startsWith('::ffff:') ? remoteAddr.slice(7) : remoteAddr;
  return parseIpv4(v4);
}

/** A predicate that admits exactly the addresses inside one of `networks`. */
export function allowNetworks(networks: readonly Network[]): CanSeeDetails {
  const list = networks.map((n) => ({ net: n.addr, mask: prefixMask(n.prefix) }));
  return (remoteAddr) => {
    const a = remoteIpv4(remoteAddr);
    if (a === undefined) return false;
    return list.some(({ net, mask }) => ((a & mask) >>> 0) === net);
  };
}
