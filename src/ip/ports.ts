/**
 * Ephemeral ports (RFC 6335 §6: the IANA dynamic range 49152-65535), the one allocator that TCP
 * (connect, listen on port 0) and UDP (bind to port 0) share. Each caller says where to start
 * (TCP at a random point, RFC 6056 §3.3.1's simple randomization; UDP after the last port it
 * gave out) and which ports are free.
 */
export const EPHEMERAL_FIRST = 49152;
export const EPHEMERAL_LAST = 65535;
export const EPHEMERAL_COUNT = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1;

/**
 * The first port from `start` on (an offset into the range; it wraps around) that `isFree`
 * accepts, or undefined when every one is taken. Tries each port at most once.
 */
export function findEphemeralPort(start: number, isFree: (port: number) => boolean): number | undefined {
  for (let i = 0; i < EPHEMERAL_COUNT; i++) {
    const port = EPHEMERAL_FIRST + ((start + i) % EPHEMERAL_COUNT);
    if (isFree(port)) return port;
  }
  return undefined;
}
