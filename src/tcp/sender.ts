/**
 * The sending half of a connection (gVisor's snd.go): the send sequence variables of RFC 9293
 * §3.3.1, the send buffer, and every rule about when bytes go out — the send window and cwnd,
 * Nagle (RFC 896), sender SWS avoidance (RFC 1122 §4.2.3.4), zero-window probing (§3.8.6.1),
 * RTT sampling (Karn, RFC 6298; timestamps, RFC 7323 §4), retransmission (RFC 6298 timeout, RFC 5681
 * fast retransmit, RFC 3042 limited transmit), SACK-based recovery (RFC 6675 with RACK-TLP, RFC 8985,
 * through recovery.ts) and the restart after idle (RFC 5681 §4.1).
 * The connection owns it; segments leave through `Connection.emitSegment`.
 */
import type { CongestionControl } from './congestion.js';
import { cubic } from './congestion/cubic.js';
import type { TcpConfig } from './config.js';
import type { Connection } from './connection.js';
import { sendSyn } from './handshake.js';
import { SYNACK_RETRIES_UNDER_PRESSURE } from './listener.js';
import { SackRecovery } from './recovery.js';
import { DUP_THRESH } from './sack.js';
import { TS_OPTION_LEN } from './timestamps.js';
import { RtoEstimator } from './rto.js';
import type { TcpSegment } from './segment.js';
import { ACK, FIN, PSH, SYN, TCP_HEADER_LEN } from './segment.js';
import { IPV4_HEADER_LEN, MIN_MTU } from '../ip/ipv4.js';
import { GSO_MAX_PACKET, GSO_MAX_SEGS } from '../link/virtio.js';
import { SendBuffer } from './sendbuffer.js';
import { seqAdd, seqGeq, seqGt, seqLeq, seqLt, seqMax, seqSub } from './seq.js';
import { TcpState, isSynchronized } from './state.js';

/**
 * How many retransmissions in a row before giving up: tcp_retries2 / tcp_syn_retries, cut for a
 * half-open connection while its listener's SYN queue is under pressure (Linux halves them) and
 * for an orphan (Linux tcp_orphan_retries).
 */
function retryLimit(c: Connection): number {
  if (!isSynchronized(c.state)) {
    if (c.state === TcpState.SYN_RECEIVED && !c.activeOpen && c.listener?.synQueuePressure) {
      return Math.min(c.config.synRetries, SYNACK_RETRIES_UNDER_PRESSURE);
    }
    return c.config.synRetries;
  }
  return c.orphaned ? Math.min(c.config.maxRetries, c.host.limits.orphanRetries) : c.config.maxRetries;
}

export class Sender {
  // --- Send sequence variables (RFC 9293 §3.3.1) ---
  iss = 0;
  una = 0;
  nxt = 0;
  /** Highest sequence number sent so far (nxt goes back to una after an RTO). */
  max = 0;
  wnd = 0;
  wl1 = 0;
  wl2 = 0;
  /** Largest window the peer ever offered (RFC 5961 §5.2's MAX.SND.WND; SWS avoidance). */
  maxWnd = 0;
  /** The peer's window scale shift (RFC 7323 §2.2). */
  wscale = 0;
  /** Effective send MSS: min(peer's MSS option, ours, the path's), less the bytes of the options
   *  every segment carries (timestamps), so that header + options + data never exceed the MTU (RFC 6691). */
  mss = 536; // RFC 9293 §3.7.1: default when the peer sends no MSS option
  /** The largest segment the path carries: our link's MTU - 40 until an ICMP message says less (RFC 1191). */
  pathMss: number;
  /** SACK-based loss recovery (scoreboard, RACK-TLP), when both SYNs agreed to SACK (`c.sackOk`).
   *  Created with the first segment sent or SACK block received (`sackRecovery()`): a connection
   *  that has sent nothing (most idle ones: 10,000 of them in the scale bench) holds no scoreboard. */
  recovery: SackRecovery | undefined;

  /**
   * TIME-WAIT: everything sent is acknowledged and nothing more will be, so the scoreboard and
   * RACK state (about a third of a connection's heap, ~950 bytes) go; an ACK that still comes
   * makes a fresh, empty one. Up to limits.maxTimeWait connections sit in TIME-WAIT for 60 s on a
   * server that closes first (Linux keeps a small tcp_timewait_sock for the same reason).
   */
  forgetRecovery(): void {
    this.recovery = undefined;
  }

  /** Bytes the user wrote that are not yet acknowledged. */
  readonly buffer = new SendBuffer();
  /** The send buffer's size now: writes see backpressure beyond it (autotuned, see newDataAcked). */
  bufLimit: number;
  readonly rto: RtoEstimator;
  cc: CongestionControl;
  /** Retransmissions of the same data (or SYN) in a row; reset by new acknowledgments. */
  retries = 0;
  /** Segments retransmitted over the connection's life. */
  retransmits = 0;
  /** RFC 896 Nagle, Minshall's variant: hold a small segment while an earlier small one is unacknowledged. */
  nagle = true;

  private dupAcks = 0;
  /** A segment is being timed for an RTT sample (Karn: never a retransmitted one). */
  private rttTiming = false;
  private rttSeq = 0;
  private rttStart = 0;
  private persistBackoff = 0;
  /** The persist timer expired while sender SWS avoidance held back a small segment with nothing in
   *  flight: send what the window allows (RFC 1122 §4.2.3.4's "override timeout"). */
  private swsOverride = false;
  /** End of the last zero-window probe byte, which the peer may acknowledge beyond SND.MAX. */
  private probeEnd: number | undefined;
  private lastSmallEnd = 0;
  private hasSmallOutstanding = false;
  /** Zero-window probes sent since the connection was orphaned (not reset by the peer's ACKs). */
  private orphanProbes = 0;
  /** When data was last sent (restart after idle, RFC 5681 §4.1). */
  private lastDataSentAt = -Infinity;

  constructor(
    private readonly c: Connection,
    config: TcpConfig,
  ) {
    this.pathMss = c.rcv.mss;
    this.rto = new RtoEstimator({ minRto: config.minRto, maxRto: config.maxRto, initialRto: config.initialRto });
    this.bufLimit = Math.min(config.initialSndBuf, config.sndBuf);
    this.cc = (config.congestionControl ?? cubic)(this.mss);
  }

  /** Our initial sequence number; the SYN occupies it. */
  init(iss: number): void {
    this.iss = iss;
    this.una = iss;
    this.nxt = seqAdd(iss, 1);
    this.max = this.nxt;
  }

  /** Whether `seq` lies in SND.UNA..SND.NXT: sent, not yet acknowledged (RFC 5927 §4.1's check of an ICMP quote). */
  inFlight(seq: number): boolean {
    return seqLeq(this.una, seq) && seqLt(seq, this.max);
  }

  /**
   * RFC 1191 §6.4 path MTU discovery: a router could not forward one of our segments (DF is set on
   * all of them) and said the next hop carries `mtu` bytes. Lower the MSS, never below what a 68-byte
   * MTU carries (RFC 791), and only ever lower it; then send again from SND.UNA at the new size (the
   * big segments were dropped), without a congestion response: nothing was lost to congestion, as
   * Linux's tcp_simple_retransmit reasons.
   */
  lowerPathMtu(mtu: number): void {
    const mss = Math.max(MIN_MTU, mtu) - IPV4_HEADER_LEN - TCP_HEADER_LEN;
    if (mss >= this.pathMss) {
      this.c.host.count('tcp.pmtu.ignored');
      return;
    }
    this.c.host.count('tcp.pmtu.lowered');
    this.pathMss = mss;
    // Data segments leave room for the timestamps option, as at the handshake (RFC 6691).
    const dataMss = Math.max(mss - (this.c.ts ? TS_OPTION_LEN : 0), 1);
    if (dataMss >= this.mss) return;
    this.mss = dataMss;
    this.cc.setMss(dataMss);
    if (this.recovery) this.recovery.mss = dataMss;
    if (!isSynchronized(this.c.state) || this.flight === 0) return;
    // Resend everything outstanding at the new size: with SACK, from the scoreboard (all of it
    // lost, what the peer holds skipped); without, by going back to SND.UNA.
    if (this.recovery) this.recovery.sb.markAllLost();
    else this.nxt = this.una;
    this.rttTiming = false; // Karn: what follows is retransmitted
    this.hasSmallOutstanding = false;
    this.c.markDirty();
  }

  /** Bytes sent and not yet acknowledged (SND.MAX - SND.UNA). */
  get flight(): number {
    return seqSub(this.max, this.una);
  }

  // ===================================================================================
  // RTT sampling (RFC 6298 §3: Karn's algorithm)
  // ===================================================================================

  /** Time the SYN (only a first transmission: Karn). */
  timeSyn(now: number): void {
    if (this.retries !== 0) return;
    this.rttTiming = true;
    this.rttStart = now;
  }

  /** Our SYN is acknowledged up to `ack`. */
  synAcked(ack: number, now: number): void {
    if (this.rttTiming && this.retries === 0) this.rto.sample(now - this.rttStart);
    this.rttTiming = false;
    this.una = ack;
    if (seqLt(this.nxt, ack)) this.nxt = ack;
    this.c.timers.retransmitAt = Infinity;
    this.rto.resetBackoff();
    if (this.retries > 0) {
      // RFC 5681 §3.1: a lost SYN means the initial window is one segment; RFC 6298 §5.7:
      // with no RTT sample (Karn), data transmission starts with an RTO of 3 s.
      this.cc.onSynLoss();
      this.rto.afterSynLoss();
    }
    this.retries = 0;
  }

  /** The peer retransmitted its SYN and we answer again: the next ACK may be to either SYN-ACK. */
  forgetRttSample(): void {
    this.rttTiming = false;
  }

  // ===================================================================================
  // ACK processing (RFC 9293 §3.10.7.4 "fifth", synchronized states)
  // ===================================================================================

  /**
   * New data acknowledged, duplicate ACKs, and the send window update. Returns false when the
   * ACK is unacceptable (the segment is dropped and an ACK sent).
   */
  onAck(seg: TcpSegment, now: number): boolean {
    const ack = seg.ack;
    if (this.probeEnd !== undefined && seqGt(ack, this.max) && seqLeq(ack, this.probeEnd)) this.max = ack;
    this.probeEnd = undefined;
    if (!this.ackAcceptable(ack, seg, now)) return false;
    const window = seg.window << this.wscale;
    const flight = this.flight;
    let tsRtt: number | undefined;
    if (seqGt(ack, this.una)) tsRtt = this.newDataAcked(seg, flight, now);
    else if (ack === this.una && seg.payload.length === 0 && !(seg.flags & (SYN | FIN)) && window === this.wnd && flight > 0) {
      this.duplicateAck(ack, flight, now);
    }
    // With nothing outstanding and no SACK blocks there is nothing for the scoreboard or RACK to
    // learn and no timer to re-arm (the ACK that emptied the pipe cleared them): a pure receiver
    // (an upload) skips this on every data segment it gets.
    if (this.c.sackOk && ack === this.una && (flight > 0 || seg.options.sack !== undefined)) this.sackAck(seg, flight, tsRtt, now);
    this.updateWindow(seg, window);
    return true;
  }

  /** RFC 5961 §5.2: acceptable if SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT (we use SND.MAX, the
   *  highest sequence sent, since SND.NXT rewinds after a retransmission timeout). */
  private ackAcceptable(ack: number, seg: TcpSegment, now: number): boolean {
    let drop: string | undefined;
    if (seqGt(ack, this.max)) drop = 'tcp.drop.ack-unsent';
    else if (seqLt(ack, seqAdd(this.una, -Math.max(this.maxWnd, 1)))) drop = 'tcp.drop.ack-too-old';
    if (drop === undefined) return true;
    this.c.host.count(drop);
    // Answered with an ACK (RFC 5961 §5.2), rate-limited per connection (Connection.replyToInvalid).
    if (this.c.replyToInvalid(seg.payload.length, (seg.flags & SYN) !== 0, now)) this.c.scheduleAck();
    return false;
  }

  /** New data acknowledged up to SEG.ACK. Returns the RTT measured from the timestamp echo, if any. */
  private newDataAcked(seg: TcpSegment, flight: number, now: number): number | undefined {
    const ack = seg.ack;
    const acked = seqSub(ack, this.una);
    const dataAcked = Math.min(acked, this.buffer.length);
    if (this.c.finSent && acked > this.buffer.length) this.c.finAcked = true;
    this.buffer.drop(dataAcked);
    this.c.charge(-dataAcked);
    this.una = ack;
    if (seqLt(this.nxt, ack)) this.nxt = ack;
    if (this.hasSmallOutstanding && seqGeq(ack, this.lastSmallEnd)) this.hasSmallOutstanding = false;
    // RFC 7323 §4.1: with timestamps every ACK of new data gives an RTT sample from its echo,
    // unambiguous even for retransmitted segments (so Karn's rule is not needed).
    const tso = this.c.ts?.enabled ? seg.options.timestamp : undefined;
    const tsRtt = tso !== undefined && tso.echo !== 0 ? this.c.ts!.rtt(tso.echo, now) : undefined;
    if (tsRtt !== undefined) {
      this.rto.sample(tsRtt);
      this.rttTiming = false;
    } else if (this.rttTiming && seqGeq(ack, this.rttSeq)) {
      // Karn's algorithm: rttTiming is cleared whenever the timed segment is retransmitted.
      this.rto.sample(now - this.rttStart);
      this.rttTiming = false;
    }
    this.retries = 0;
    this.dupAcks = 0;
    this.c.softError = undefined; // the peer is reachable after all (as Linux clears sk_err_soft)
    const verdict = this.cc.onAck(acked, ack, flight, now, this.rto.srtt);
    if (verdict === 'exit') this.recovery?.rack.onRecoveryEnd();
    // Send-buffer autotuning (Linux tcp_sndbuf_expand): room for two congestion windows, so the
    // application keeps the pipe full; not while the stack is under memory pressure.
    const want = Math.min(this.c.config.sndBuf, 2 * this.cc.cwnd);
    if (want > this.bufLimit && !this.c.host.memory.underPressure) this.bufLimit = want;
    // RFC 6298 §5.2/5.3: stop the timer when everything is acknowledged, else restart it.
    this.c.timers.retransmitAt = this.una === this.max ? Infinity : now + this.rto.rto;
    if (verdict === 'partial' && !this.c.sackOk) this.retransmitFirst(now);
    if (dataAcked > 0) this.c.user.onWritable?.();
    this.c.markDirty();
    return tsRtt;
  }

  /** RFC 5681 §2: a duplicate ACK; the congestion controller decides on fast retransmit (§3.2). */
  private duplicateAck(ack: number, flight: number, now: number): void {
    this.dupAcks++;
    this.c.host.count('tcp.dupack.in');
    if (this.c.sackOk) {
      // RFC 6675 §5 step 4: DupThresh duplicates mean SND.UNA's segment is lost even when the
      // peer's ACKs carried no SACK blocks to show it (the scoreboard decides everything else).
      const sb = this.sackRecovery().sb;
      const first = sb.first();
      if (this.dupAcks >= DUP_THRESH && first !== undefined && !first.lost && !first.sacked) sb.markLost(first);
    } else if (this.cc.onDupAck(this.dupAcks, ack, flight, this.max) === 'retransmit') {
      this.c.host.count('tcp.fast-retransmit');
      this.rttTiming = false;
      this.retransmitFirst(now);
    }
    this.c.markDirty(); // in recovery an inflated cwnd, and before it limited transmit, may allow new data
  }

  /**
   * An acceptable ACK on a SACK connection: update the scoreboard and RACK, detect losses (RFC 6675
   * IsLost, RFC 8985 RACK), enter recovery once per loss event, and re-arm the RACK and TLP timers.
   */
  private sackAck(seg: TcpSegment, flight: number, tsRtt: number | undefined, now: number): void {
    const rec = this.sackRecovery();
    const c = this.c;
    const out = rec.onAck(seg.ack, seg.options.sack, this.max, now, this.cc.inRecovery, this.rto.srtt ?? this.rto.rto, tsRtt === undefined ? undefined : now - tsRtt);
    if (out.invalid > 0) c.host.count('tcp.sack.invalid', out.invalid);
    if (out.dsack) c.host.count('tcp.dsack.in');
    if (out.probeRepairedLoss) {
      // RFC 8985 §7.4.2: the probe repaired a loss that no recovery saw: reduce the window once.
      c.host.count('tcp.tlp.recovered');
      this.cc.onRepairedLoss(flight, now);
    }
    if (out.lossDetected) this.lossDetected(flight, now);
    c.timers.reorderAt = out.reorderAt;
    c.timers.probeAt = rec.probeDeadline(now, this.rto.srtt, this.flight, this.mss, this.cc.inRecovery, c.timers.retransmitAt);
    c.host.reschedule(c);
  }

  /** The scoreboard holds lost segments: start a recovery (once per loss event) and send. */
  private lossDetected(flight: number, now: number): void {
    if (!this.cc.inRecovery && this.cc.enterRecovery(this.una, flight, this.max, now)) {
      this.c.host.count('tcp.fast-retransmit');
      this.c.host.count('tcp.sack.recovery');
      // RFC 6675 §5 (4.3): entering recovery retransmits the first segment presumed dropped at
      // once, even when pipe is above the reduced cwnd (Linux's PRR forces the same); later
      // holes wait until cwnd - pipe leaves room (sendData).
      const first = this.recovery!.nextRetransmit();
      if (first !== undefined) this.resend(first.start, seqSub(first.end, first.start), now);
    }
    this.rttTiming = false;
    this.c.markDirty();
  }

  /** §3.10.7.4 fifth: the window is updated only from a segment newer than the last one that did. */
  private updateWindow(seg: TcpSegment, window: number): void {
    const ack = seg.ack;
    if (!(seqLeq(this.una, ack) && (seqLt(this.wl1, seg.seq) || (this.wl1 === seg.seq && seqLeq(this.wl2, ack))))) return;
    const opened = window > this.wnd;
    this.wnd = window;
    this.wl1 = seg.seq;
    this.wl2 = ack;
    if (window > this.maxWnd) this.maxWnd = window;
    // A window that grew ends zero-window probing or SWS avoidance's wait: sendData decides
    // again, and re-arms the persist timer if it still cannot send. The same window repeated
    // must not cancel that timer: with nothing in flight, it is all that will move us on.
    if (opened) {
      this.c.timers.persistAt = Infinity;
      this.persistBackoff = 0;
      this.c.markDirty();
    }
  }

  // ===================================================================================
  // Output
  // ===================================================================================

  /** The SACK recovery state of a connection that agreed to SACK, created on first use. */
  private sackRecovery(): SackRecovery {
    return (this.recovery ??= new SackRecovery(this.mss));
  }

  /** Data (and the FIN) as the send window, cwnd, Nagle and SWS avoidance allow (RFC 9293 §3.8.6.2.1, RFC 1122 §4.2.3.4). */
  sendData(now: number): boolean {
    let sent = false;
    const mss = this.mss;
    // RFC 5681 §4.1: after an idle period longer than the RTO the ACK clock is gone; restart from
    // at most the initial window rather than sending a stale cwnd at line rate.
    if (this.una === this.max && this.buffer.length > 0 && now - this.lastDataSentAt > this.rto.rto) {
      if (this.lastDataSentAt !== -Infinity) this.c.host.count('tcp.idle-restart');
      this.cc.onIdleRestart(now);
    }
    // Nothing sent yet on a SACK connection (no `recovery`): no holes, and pipe = offset = 0.
    const rec = this.recovery;
    const gsoMax = this.c.host.offload ? this.gsoMax() : mss;
    for (let guard = 0; guard < 100_000; guard++) {
      if (rec) {
        // RFC 6675 §5 NextSeg: a lost hole goes before new data, while pipe leaves room in cwnd.
        const lost = rec.nextRetransmit();
        if (lost !== undefined) {
          if (this.cc.cwnd - rec.pipe < Math.min(mss, seqSub(lost.end, lost.start))) break;
          this.resend(lost.start, seqSub(lost.end, lost.start), now);
          sent = true;
          continue;
        }
      }
      const offset = seqSub(this.nxt, this.una);
      const remaining = this.buffer.length - offset;
      if (remaining < 0) break; // the FIN is already out
      // In flight: with SACK, RFC 6675's pipe; without, everything outstanding. RFC 3042 limited
      // transmit: each of the first two duplicate ACKs lets one new segment out beyond cwnd (with
      // SACK, pipe accounting does that by itself).
      const limited = !this.c.sackOk && !this.cc.inRecovery && this.dupAcks > 0 && this.dupAcks < DUP_THRESH ? this.dupAcks * mss : 0;
      const usable = Math.min(this.wnd - offset, this.cc.cwnd + limited - (rec ? rec.pipe : offset));
      const isRetransmission = seqLt(this.nxt, this.max);
      let len = Math.min(remaining, mss, Math.max(usable, 0));
      if (len === mss && gsoMax > mss && !isRetransmission) {
        // Offload: one super-segment of whole MSS-sized pieces (the link cuts it, each piece with
        // this header), as much as the windows, the buffer and 64 KiB allow. A shorter tail goes on
        // its own next time round, so Nagle and SWS avoidance judge it as they judge any small segment.
        len = Math.min(remaining, gsoMax, Math.max(usable, 0));
        len -= len % mss;
      }
      const fin = this.c.finQueued && len === remaining;
      if (len === 0 && !(fin && remaining === 0)) {
        if (remaining > 0 && offset === 0 && this.c.timers.retransmitAt === Infinity) this.armPersist(now);
        break;
      }
      // Nagle and SWS avoidance decide when NEW data may go; bytes already sent once (resent after
      // a timeout) were allowed then, and holding them back now could stall the connection for good.
      if (len > 0 && len < mss && !fin && !isRetransmission && this.holdSmall(len, remaining, offset, now)) break;
      if (limited > 0 && offset + len > this.cc.cwnd) this.c.host.count('tcp.limited-transmit');
      this.transmit(len, remaining, fin, isRetransmission, now);
      sent = true;
      if (fin) break;
    }
    return sent;
  }

  /**
   * The largest super-segment (offload): whole MSS-sized pieces, at most GSO_MAX_SEGS of them, in one
   * IPv4 packet of at most 64 KiB with the header every piece repeats (timestamps included: `mss`
   * already leaves room for them, RFC 6691). Retransmissions and probes stay one MSS.
   */
  private gsoMax(): number {
    const header = IPV4_HEADER_LEN + TCP_HEADER_LEN + (this.c.ts?.enabled ? TS_OPTION_LEN : 0);
    const pieces = Math.min(GSO_MAX_SEGS, Math.floor((GSO_MAX_PACKET - header) / this.mss));
    return Math.max(1, pieces) * this.mss;
  }

  /** Whether a small new segment of `len` bytes waits (Nagle, sender SWS avoidance). */
  private holdSmall(len: number, remaining: number, inFlight: number, now: number): boolean {
    // Nagle (RFC 896, Minshall's variant): hold a small segment while a small one is unacknowledged.
    if (this.nagle && this.hasSmallOutstanding && inFlight > 0) return true;
    // Sender SWS avoidance (RFC 1122 §4.2.3.4): a small segment cut short by the window goes out
    // only if it is at least half the largest window the peer has offered. With nothing in flight
    // no ACK will come to open the window further: the persist timer stands in for the RFC's
    // "override timeout", after which what fits is sent (onPersistTimeout sets swsOverride).
    if (len < remaining && len < this.maxWnd / 2 && !this.swsOverride) {
      if (inFlight === 0 && this.c.timers.retransmitAt === Infinity) this.armPersist(now);
      return true;
    }
    return false;
  }

  /** Send `len` bytes at SND.NXT (and the FIN), and advance SND.NXT. */
  private transmit(len: number, remaining: number, fin: boolean, isRetransmission: boolean, now: number): void {
    const flags = ACK | (len === remaining && len > 0 ? PSH : 0) | (fin ? FIN : 0);
    this.c.emitSegment(this.nxt, len, flags, now);
    if (this.c.sackOk) this.sackRecovery().onSent(this.nxt, len + (fin ? 1 : 0), now);
    if (len > 0) this.lastDataSentAt = now;
    this.swsOverride = false;
    if (isRetransmission) {
      this.retransmits++;
      this.c.host.count('tcp.retransmit');
    } else if (!this.rttTiming && len > 0) {
      this.rttTiming = true;
      this.rttSeq = seqAdd(this.nxt, len);
      this.rttStart = now;
    }
    if (len > 0 && len < this.mss) {
      this.hasSmallOutstanding = true;
      this.lastSmallEnd = seqAdd(this.nxt, len);
    }
    this.nxt = seqAdd(this.nxt, len + (fin ? 1 : 0));
    if (fin) this.c.finSent = true;
    this.max = seqMax(this.max, this.nxt);
    const timers = this.c.timers;
    if (timers.retransmitAt === Infinity) {
      timers.retransmitAt = now + this.rto.rto;
      this.c.host.reschedule(this.c);
    }
    timers.persistAt = Infinity;
    if (this.recovery && !isRetransmission) {
      // RFC 8985 §7.2: new data (re)arms the tail loss probe.
      timers.probeAt = this.recovery.probeDeadline(now, this.rto.srtt, this.flight, this.mss, this.cc.inRecovery, timers.retransmitAt);
      this.c.host.reschedule(this.c);
    }
  }

  /**
   * Retransmit up to one MSS of [start, start + len) (a hole from the scoreboard, or a tail loss
   * probe), with the FIN if it lies there, without moving SND.NXT.
   */
  private resend(start: number, len: number, now: number): void {
    const offset = seqSub(start, this.una);
    const dataLen = Math.max(0, Math.min(len, this.mss, this.buffer.length - offset));
    const fin = this.c.finSent && offset + dataLen === this.buffer.length && len > dataLen;
    // PSH as when the data first went out: on the segment that empties the buffer (Linux resends
    // the same skb, PSH included).
    const psh = dataLen > 0 && offset + dataLen === this.buffer.length ? PSH : 0;
    this.c.emitSegment(start, dataLen, ACK | psh | (fin ? FIN : 0), now);
    if (this.c.sackOk) this.sackRecovery().onSent(start, dataLen + (fin ? 1 : 0), now);
    if (dataLen > 0) this.lastDataSentAt = now;
    this.retransmits++;
    this.c.host.count('tcp.retransmit');
    this.rttTiming = false; // Karn
    if (this.c.timers.retransmitAt === Infinity) {
      this.c.timers.retransmitAt = now + this.rto.rto;
      this.c.host.reschedule(this.c);
    }
  }

  /** Retransmit the first unacknowledged segment without moving SND.NXT (fast retransmit, partial ACK). */
  private retransmitFirst(now: number): void {
    const len = Math.min(this.buffer.length, this.mss);
    const fin = this.c.finSent && len === this.buffer.length;
    if (len === 0 && !fin) return;
    this.c.emitSegment(this.una, len, ACK | (len > 0 && len === this.buffer.length ? PSH : 0) | (fin ? FIN : 0), now);
    this.retransmits++;
    this.c.host.count('tcp.retransmit');
    this.c.timers.retransmitAt = now + this.rto.rto;
    this.c.host.reschedule(this.c);
  }

  // ===================================================================================
  // Timeouts
  // ===================================================================================

  /** RFC 8985 §6.3: the reordering window has passed for a segment RACK was unsure about. */
  onReorderTimeout(now: number): void {
    const rec = this.recovery;
    if (!rec) return;
    const { lost, reorderAt } = rec.onReorderTimeout(now, this.cc.inRecovery, this.rto.srtt ?? this.rto.rto);
    this.c.timers.reorderAt = reorderAt;
    if (lost) this.lossDetected(this.flight, now);
    this.c.host.reschedule(this.c);
  }

  /**
   * RFC 8985 §7.3, the tail loss probe: one new segment if the peer's window allows it, else the
   * last segment sent again; either way an ACK (with SACK blocks) comes back and RACK can find
   * what was lost at the tail without waiting for the RTO.
   */
  onProbeTimeout(now: number): void {
    const rec = this.recovery;
    if (!rec || this.una === this.max) return;
    const c = this.c;
    const offset = seqSub(this.nxt, this.una);
    const remaining = this.buffer.length - offset;
    const len = Math.min(remaining, this.mss);
    c.host.count('tcp.tlp.probe');
    if (len > 0 && this.wnd - offset >= len) {
      this.transmit(len, remaining, c.finQueued && len === remaining, false, now);
      rec.rack.onProbeSent(this.max, false);
    } else {
      const last = rec.sb.last();
      if (last === undefined) return;
      const start = seqMax(last.start, seqAdd(last.end, -this.mss));
      this.resend(start, seqSub(last.end, start), now);
      rec.rack.onProbeSent(this.max, true);
    }
    // RFC 8985 §7.3: the RTO is re-armed for the probe; no second probe until this one is answered.
    c.timers.retransmitAt = now + this.rto.rto;
    c.timers.probeAt = Infinity;
    c.host.reschedule(c);
  }

  /** RFC 6298 §5.4-5.6: retransmit the earliest unacknowledged segment, back off, restart. */
  onRetransmitTimeout(now: number): void {
    const c = this.c;
    const limit = retryLimit(c);
    if (this.retries >= limit) {
      c.host.count('tcp.timeout');
      if (limit < (isSynchronized(c.state) ? c.config.maxRetries : c.config.synRetries)) {
        c.host.count(c.orphaned ? 'tcp.orphan.gave-up' : 'tcp.listen.synack-retries-cut');
      }
      if (c.state === TcpState.SYN_RECEIVED && !c.activeOpen) c.toClosed('SYN-ACK retransmission limit');
      else c.timedOut('retransmission limit');
      return;
    }
    this.retries++;
    this.rto.backoff();
    this.rttTiming = false; // Karn: never time a retransmitted segment
    c.host.count('tcp.rto');
    if (c.state === TcpState.SYN_SENT || c.state === TcpState.SYN_RECEIVED) {
      this.retransmits++;
      c.host.count('tcp.retransmit');
      sendSyn(c, now);
      return;
    }
    this.cc.onRto(this.flight, this.max, this.retries > 1);
    this.dupAcks = 0;
    this.hasSmallOutstanding = false;
    c.timers.probeAt = c.timers.reorderAt = Infinity;
    if (this.c.sackOk) {
      // With SACK: everything not SACKed is lost and is resent from the scoreboard as cwnd (one
      // segment now) allows, skipping what the peer holds (RFC 6675 §5.1, Linux's tcp_enter_loss).
      if (this.sackRecovery().onRto()) c.host.count('tcp.sack.reneged');
    } else {
      // Go back to SND.UNA: cwnd is one segment now, so flush() resends just the first one.
      this.nxt = this.una;
    }
    if (!this.c.sackOk && this.wnd === 0 && this.buffer.length > 0) {
      // The peer's window is closed: nothing may be resent, and unless we send something its
      // window update may never come (it was lost, or the peer has nothing to send). Probe the
      // zero window (RFC 9293 §3.8.6.1); the persist timer takes over from the retransmission timer.
      c.timers.retransmitAt = Infinity;
      this.onPersistTimeout(now);
      return;
    }
    c.timers.retransmitAt = now + this.rto.rto;
    c.host.reschedule(c);
    c.markDirty();
  }

  private armPersist(now: number): void {
    const timers = this.c.timers;
    if (timers.persistAt !== Infinity) return;
    // RFC 1122 §4.2.2.17: probe a zero window; the interval backs off exponentially.
    const base = this.rto.rto;
    timers.persistAt = now + Math.min(base * (1 << Math.min(this.persistBackoff, 10)), this.c.config.maxRto);
    this.c.host.reschedule(this.c);
  }

  /** A zero-window probe: one byte of new data past the window (RFC 9293 §3.8.6.1). */
  onPersistTimeout(now: number): void {
    const c = this.c;
    const offset = seqSub(this.nxt, this.una);
    if (this.buffer.length - offset <= 0) return;
    if (this.wnd > 0) {
      // Not a zero window: sender SWS avoidance was waiting for a bigger one (sendData). Time's up.
      if (offset === 0) {
        this.swsOverride = true;
        c.markDirty();
      }
      return;
    }
    // The connection survives a long zero window while the peer answers probes; it gives up only
    // when probes go unanswered as long as retransmissions would (Linux does the same).
    if (c.keepalive.probes >= c.config.maxRetries) {
      c.timedOut('zero-window probes unanswered');
      return;
    }
    // An orphan has nobody to wait for: it gets a bounded number of probes, answered or not
    // (Linux tcp_orphan_retries), else a peer that keeps ACKing a zero window keeps it forever.
    if (c.orphaned && this.orphanProbes >= c.host.limits.orphanRetries) {
      c.host.count('tcp.orphan.gave-up');
      c.toClosed('orphan: zero-window probes exhausted');
      return;
    }
    if (c.orphaned) this.orphanProbes++;
    c.keepalive.probes++;
    c.host.count('tcp.persist.probe');
    c.emitSegment(this.nxt, 1, ACK, now);
    // The probe byte is not "in flight" (no retransmission timer), but the peer may acknowledge it.
    this.probeEnd = seqAdd(this.nxt, 1);
    this.persistBackoff++;
    this.armPersist(now);
  }
}
