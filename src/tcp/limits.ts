/**
 * The limits that keep one stack alive under hostile traffic, each with a Linux-like default
 * and a counter when it bites (README "Limits and hostile traffic" lists them with their flags).
 */

import { DEFAULT_MEM_LIMIT } from './memory.js';
import { CHALLENGE_ACKS_PER_SECOND, INVALID_REPLY_INTERVAL_MS } from './ratelimit.js';

export interface TcpLimits {
  /**
   * Bytes of buffered data (unread, out-of-order, unacknowledged) for all connections together
   * (memory.ts). Windows stop growing and out-of-order data is dropped above 3/4 of it; new data
   * is refused above it. Linux: tcp_mem.
   */
  memLimit: number;
  /**
   * Connections in every state but TIME-WAIT. A SYN beyond it gets a RST (`tcp.limit.connections`).
   * Linux has no single knob: the process's file limit (ulimit -n) plays this part.
   */
  maxConnections: number;
  /** TIME-WAIT entries; beyond it a closing connection skips TIME-WAIT (Linux tcp_max_tw_buckets). */
  maxTimeWait: number;
  /** Connections the application has closed that still finish on their own (Linux tcp_max_orphans);
   *  beyond it the oldest is reset. */
  maxOrphans: number;
  /** Retransmissions or zero-window probes an orphan gets before it is given up, even when the peer
   *  keeps acknowledging the probes (Linux tcp_orphan_retries; its 0 means 8). */
  orphanRetries: number;
  /** Half-open (SYN-RECEIVED) connections per listener, also bounded by its backlog (Linux tcp_max_syn_backlog). */
  maxSynBacklog: number;
  /**
   * Answer SYNs with SYN cookies when a listener's SYN queue is full (Linux tcp_syncookies = 1);
   * 'always': every SYN, queue full or not (tcp_syncookies = 2, for tests); false: never (0).
   */
  synCookies: boolean | 'always';
  /** RSTs per second for segments that belong to no connection (burst: one second's worth). */
  rstPerSecond: number;
  /** Replies to invalid segments per connection: at most one per this many ms (Linux tcp_invalid_ratelimit). */
  invalidReplyIntervalMs: number;
  /** RFC 5961 challenge ACKs per second for the stack, randomised ±50% each second (Linux tcp_challenge_ack_limit). */
  challengeAcksPerSecond: number;
}

export const DEFAULT_TCP_LIMITS: TcpLimits = {
  memLimit: DEFAULT_MEM_LIMIT,
  maxConnections: 65_536,
  maxTimeWait: 32_768,
  maxOrphans: 8_192,
  orphanRetries: 8,
  maxSynBacklog: 256,
  synCookies: true,
  rstPerSecond: 1000,
  invalidReplyIntervalMs: INVALID_REPLY_INTERVAL_MS,
  challengeAcksPerSecond: CHALLENGE_ACKS_PER_SECOND,
};
