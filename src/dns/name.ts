/**
 * Domain names (RFC 1035 section 2.3, 3.1): text form <-> labels, and the limits.
 *
 * The text form is the presentation format of RFC 1035 section 5.1: labels joined by ".",
 * with "\." for a dot inside a label, "\\" for a backslash, and "\DDD" (decimal) for any
 * byte that is not printable ASCII. The root is "" (written "." in zone files). A trailing
 * dot is accepted on input and never produced on output.
 */

/** RFC 1035 section 2.3.4: a label is at most 63 octets, a name at most 255 on the wire. */
export const MAX_LABEL = 63;
export const MAX_NAME_WIRE = 255;

/** Labels of a text name, as bytes; undefined when it breaks a limit or an escape is bad. */
export function nameToLabels(name: string): Uint8Array[] | undefined {
  if (name === '' || name === '.') return [];
  const labels: Uint8Array[] = [];
  let cur: number[] = [];
  let wire = 1; // the root label's zero byte
  const end = name.endsWith('.') && !name.endsWith('\\.') ? name.length - 1 : name.length;
  for (let i = 0; i < end; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2e /* . */) {
      if (cur.length === 0) return undefined; // empty label
      labels.push(Uint8Array.from(cur));
      wire += cur.length + 1;
      cur = [];
      continue;
    }
    if (c === 0x5c /* \ */) {
      const d = /^\d{3}/.exec(name.slice(i + 1, i + 4));
      if (d) {
        const v = Number(d[0]);
        if (v > 255) return undefined;
        cur.push(v);
        i += 3;
      } else {
        if (i + 1 >= end) return undefined;
        cur.push(name.charCodeAt(++i) & 0xff);
      }
    } else {
      if (c > 0x7e || c < 0x21) return undefined; // spaces and non-ASCII must be escaped
      cur.push(c);
    }
    if (cur.length > MAX_LABEL) return undefined;
  }
  if (cur.length === 0) return undefined; // "a..b" or a lone trailing "\."
  labels.push(Uint8Array.from(cur));
  wire += cur.length + 1;
  return wire <= MAX_NAME_WIRE ? labels : undefined;
}

/** Presentation form of one label (escapes as in RFC 1035 section 5.1). */
export function labelToText(label: Uint8Array): string {
  let s = '';
  for (const b of label) {
    if (b === 0x2e || b === 0x5c) s += '\\' + String.fromCharCode(b);
    else if (b > 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += '\\' + String(b).padStart(3, '0');
  }
  return s;
}

/** Whether a name is valid text for nameToLabels. */
export function isValidName(name: string): boolean {
  return nameToLabels(name) !== undefined;
}

/** Canonical form for comparisons and map keys: ASCII lowercased, no trailing dot (RFC 4343). */
export function canonicalName(name: string): string {
  const n = name.endsWith('.') && !name.endsWith('\\.') ? name.slice(0, -1) : name;
  return n.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** Whether `name` is `zone` or below it (both canonical). */
export function isSubdomain(name: string, zone: string): boolean {
  if (zone === '') return true;
  return name === zone || name.endsWith('.' + zone);
}

/** The reverse-lookup name of an IPv4 address: 10.77.0.2 -> 2.0.77.10.in-addr.arpa (RFC 1035 section 3.5). */
export function reverseName(ipv4: string): string {
  return ipv4.split('.').reverse().join('.') + '.in-addr.arpa';
}
