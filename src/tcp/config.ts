/** A TCP layer's settings: every limit is a named option with a Linux-like default. */
import type { CongestionFactory } from './congestion.js';

export interface TcpConfig {
  /** Receive buffer: the most we advertise (bytes), however far autotuning grows it. */
  rcvBuf: number;
  /** Send buffer: `write()` reports backpressure beyond this many unacknowledged bytes, at most. */
  sndBuf: number;
  /**
   * Where the receive buffer starts; it grows to twice what the application reads per round
   * trip, up to rcvBuf, unless the stack is under memory pressure (receive-buffer autotuning,
   * Linux tcp_rmem's default and tcp_rcv_space_adjust). A peer gets a large window only
   * while the application keeps up.
   */
  initialRcvBuf: number;
  /** Where the send buffer starts; it grows to twice the congestion window, up to sndBuf (Linux tcp_wmem, tcp_sndbuf_expand). */
  initialSndBuf: number;
  /** Maximum segment lifetime, ms. TIME-WAIT lasts 2*MSL (RFC 9293 §3.4.2). */
  msl: number;
  /** Data retransmissions before giving up with ETIMEDOUT (Linux tcp_retries2 = 15). */
  maxRetries: number;
  /** SYN / SYN-ACK retransmissions before giving up (Linux tcp_syn_retries = 6). */
  synRetries: number;
  minRto: number;
  maxRto: number;
  initialRto: number;
  /** Delayed-ACK timer, ms (RFC 9293 §3.8.6.3: at most 500; Linux uses 40). Capped at 200 (MAX_DELAYED_ACK_MS). */
  delayedAckMs: number;
  /** Our receive window scale shift (RFC 7323 §2.2), offered when the peer offers one too. */
  wscale: number;
  /** Bytes of out-of-order data kept per connection. */
  oooMaxBytes: number;
  /** FIN-WAIT-2 timeout for connections the user has let go of (Linux tcp_fin_timeout). */
  finWait2Timeout: number;
  /** Keepalive (RFC 1122 §4.2.3.6): idle time before the first probe, interval, probes before giving up. */
  keepaliveIdle: number;
  keepaliveInterval: number;
  keepaliveCount: number;
  /** Makes each connection's congestion controller (default CUBIC, src/tcp/congestion/cubic.ts, as
   *  Linux; NewReno is `newReno` in src/tcp/congestion.ts). */
  congestionControl?: CongestionFactory;
  /** Offer and accept selective acknowledgments (RFC 2018; recovery by RFC 6675 and RACK-TLP). */
  sack: boolean;
  /** Offer and accept the timestamps option (RFC 7323: RTT measurement, PAWS). */
  timestamps: boolean;
}

export const DEFAULT_TCP_CONFIG: TcpConfig = {
  rcvBuf: 1 << 20,
  sndBuf: 1 << 20,
  initialRcvBuf: 64 << 10,
  initialSndBuf: 64 << 10,
  msl: 30_000, // TIME-WAIT = 60 s, like Linux
  maxRetries: 15,
  synRetries: 6,
  minRto: 200, // Linux's TCP_RTO_MIN; RFC 6298 §2.4 says 1 s "SHOULD" — 200 ms is what Linux peers expect
  maxRto: 120_000,
  initialRto: 1000, // RFC 6298 §2.1
  delayedAckMs: 40,
  wscale: 7,
  oooMaxBytes: 1 << 20,
  finWait2Timeout: 60_000,
  keepaliveIdle: 7_200_000,
  keepaliveInterval: 75_000,
  keepaliveCount: 9,
  sack: true,
  timestamps: true,
};
