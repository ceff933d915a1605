/**
 * An upstream server as the balancers see it, and the bookkeeping every algorithm shares:
 * nginx's round-robin peer state (ngx_http_upstream_round_robin.c). Pure: time is a
 * parameter (milliseconds here; nginx counts whole seconds).
 *
 * Passive health checks work as in nginx: a failed attempt counts in `fails`; once `fails`
 * reaches `maxFails`, the server is skipped until `failTimeoutMs` has passed since the last
 * failure (`checked`). The next attempt after that is the probe: if it succeeds, `fails`
 * goes back to 0; if it fails, the server is out for another `failTimeoutMs`. Failures only
 * add up while they come less than `failTimeoutMs` apart ("max_fails within fail_timeout").
 */

export interface PeerConfig {
  /** host:port as written in the configuration (the consistent hash hashes this text). */
  name: string;
  host: string;
  port: number;
  weight: number;
  /** 0 turns failure accounting off. nginx's default: 1. */
  maxFails: number;
  /** nginx's default: 10 s. */
  failTimeoutMs: number;
  backup: boolean;
  /** Marked `down` in the configuration: never chosen. */
  down: boolean;
}

export interface Peer extends PeerConfig {
  /** Smooth weighted round robin's running weight. */
  currentWeight: number;
  /** Lowered on failures, climbs back by one per selection (nginx's effective_weight). */
  effectiveWeight: number;
  fails: number;
  /** Time of the last failure. */
  accessed: number;
  /** Start of the current failure window (time of the last failure, or of the last probe). */
  checked: number;
  /** Requests in progress on this peer (least_conn's count). */
  conns: number;
}

export const DEFAULT_MAX_FAILS = 1;
export const DEFAULT_FAIL_TIMEOUT_MS = 10_000;

export function makePeer(c: PeerConfig): Peer {
  return { ...c, currentWeight: 0, effectiveWeight: c.weight, fails: 0, accessed: 0, checked: 0, conns: 0 };
}

/** The servers of one upstream block: primaries, then backups (used only when no primary can be). */
export interface PeerSet {
  primary: Peer[];
  backup: Peer[];
}

/** Skipped by every algorithm: marked down, or failed maxFails times inside the window. */
export function unavailable(p: Peer, now: number): boolean {
  return p.down || (p.maxFails > 0 && p.fails >= p.maxFails && now - p.checked <= p.failTimeoutMs);
}

/** A peer was chosen for an attempt (nginx: conns++, and a new failure window starts once the old one is over). */
export function takePeer(p: Peer, now: number): Peer {
  p.conns++;
  if (now - p.checked > p.failTimeoutMs) p.checked = now;
  return p;
}

/**
 * The attempt on `p` is over (ngx_http_upstream_free_round_robin_peer). A failure lowers the
 * effective weight by weight/maxFails (integer division, as nginx), so a flaky server gets
 * fewer requests before it is taken out; a success clears the failures once the window that
 * held them is over.
 */
export function releasePeer(p: Peer, failed: boolean, now: number, single: boolean): void {
  p.conns = Math.max(0, p.conns - 1);
  // nginx does no failure accounting for an upstream of one server: there is nowhere else to go.
  if (single) return;
  if (failed) {
    p.fails++;
    p.accessed = now;
    p.checked = now;
    if (p.maxFails > 0) p.effectiveWeight -= Math.floor(p.weight / p.maxFails);
    if (p.effectiveWeight < 0) p.effectiveWeight = 0;
  } else if (p.accessed < p.checked) {
    p.fails = 0;
  }
}

/** True when the peer is down because of failures (not by configuration): the status page's "failed". */
export function isFailed(p: Peer, now: number): boolean {
  return !p.down && unavailable(p, now);
}
