/**
 * An authoritative zone (RFC 1034 section 4.2): the records of one SOA's domain, looked up
 * by name. Built from a zone file (./zonefile.ts) or in code (`defaultZones`). Sans-I/O.
 */
import { canonicalName, isSubdomain, reverseName } from './name.js';
import type { DnsRecord } from './wire.js';
import { CLASS_IN } from './wire.js';

type Soa = Extract<DnsRecord, { type: 'SOA' }>;

export class Zone {
  /** The zone's apex, canonical (lowercase, no trailing dot). */
  readonly origin: string;
  readonly soa: Soa;
  private readonly byName = new Map<string, DnsRecord[]>();
  /** Names that exist only because something lies below them (RFC 4592 "empty non-terminals"). */
  private readonly interior = new Set<string>();

  /** `records` are the zone's other records (the SOA is not repeated among them). */
  constructor(soa: Soa, records: DnsRecord[]) {
    this.origin = canonicalName(soa.name);
    this.soa = soa;
    for (const r of [soa, ...records]) {
      const key = canonicalName(r.name);
      if (!isSubdomain(key, this.origin)) throw new RangeError(`${r.name} is outside the zone ${this.origin}`);
      const list = this.byName.get(key);
      if (list) list.push(r);
      else this.byName.set(key, [r]);
      // Every ancestor up to the apex exists (RFC 1034 section 3.1 tree).
      for (let n = key; n !== this.origin && n.includes('.'); ) {
        n = n.slice(n.indexOf('.') + 1);
        this.interior.add(n);
      }
    }
  }

  /** Whether `name` (canonical) belongs to this zone. */
  contains(name: string): boolean {
    return isSubdomain(name, this.origin);
  }

  /** Records owned by `name` (canonical); undefined when the name does not exist at all. */
  lookup(name: string): DnsRecord[] | undefined {
    const list = this.byName.get(name);
    if (list) return list;
    return this.interior.has(name) || name === this.origin ? [] : undefined;
  }

  /** Every record of the zone (SOA first). */
  *records(): IterableIterator<DnsRecord> {
    for (const list of this.byName.values()) yield* list;
  }
}

/** SOA timers for built-in zones: serial 1, refresh 1 h, retry 15 min, expire 1 week, negative TTL 60 s. */
function builtinSoa(origin: string): Soa {
  return { name: origin, class: CLASS_IN, ttl: 300, type: 'SOA', mname: origin, rname: `hostmaster.${origin}`, serial: 1, refresh: 3600, retry: 900, expire: 604800, minimum: 60 };
}

/**
 * The zones `netstack up --dns` serves without a zone file: `netstack.test` (RFC 6761
 * reserves .test) with an A record for the stack's address, and the reverse zone of its
 * /24 with the matching PTR, so `dig -x` works.
 */
export function defaultZones(stackAddr: string, name = 'netstack.test'): Zone[] {
  const ttl = 300;
  const forward = new Zone(builtinSoa(name), [
    { name, class: CLASS_IN, ttl, type: 'NS', target: name },
    { name, class: CLASS_IN, ttl, type: 'A', address: stackAddr },
  ]);
  const ptrName = reverseName(stackAddr);
  const reverseOrigin = ptrName.slice(ptrName.indexOf('.') + 1);
  const reverse = new Zone(builtinSoa(reverseOrigin), [
    { name: reverseOrigin, class: CLASS_IN, ttl, type: 'NS', target: name },
    { name: ptrName, class: CLASS_IN, ttl, type: 'PTR', target: name },
  ]);
  return [forward, reverse];
}
