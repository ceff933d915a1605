/**
 * The three-way handshake (RFC 9293 §3.5; gVisor's connect.go): opening actively (SYN-SENT) or
 * from a listener (SYN-RECEIVED), the SYN's options (MSS §3.7.1, window scale and timestamps
 * RFC 7323 §2.2 / §3.2, SACK-permitted RFC 2018 §2), segment arrival in SYN-SENT (§3.10.7.3), and
 * the SYN-RECEIVED cases of §3.10.7.4.
 */
import type { TcpConfig } from './config.js';
import type { Connection } from './connection.js';
import { TS_OPTION_LEN, Timestamps } from './timestamps.js';
import type { TcpOptions, TcpSegment } from './segment.js';
import { ACK, FIN, RST, SYN } from './segment.js';
import { seqAdd, seqGt, seqLeq, seqLt } from './seq.js';
import { TcpState } from './state.js';

/** Active OPEN (§3.10.1): send a SYN from SYN-SENT. */
export function openActive(c: Connection, iss: number, now: number, tsOffset: number): void {
  c.activeOpen = true;
  if (c.config.timestamps) c.ts = new Timestamps(tsOffset);
  c.snd.init(iss);
  c.transition(TcpState.SYN_SENT, 'active open');
  sendSyn(c, now);
}

/** A listener received `syn` (§3.10.7.2): answer with SYN-ACK from SYN-RECEIVED. */
export function openPassive(c: Connection, syn: TcpSegment, iss: number, port: number, now: number, tsOffset: number): void {
  if (c.config.timestamps) c.ts = new Timestamps(tsOffset);
  c.snd.init(iss);
  c.rcv.init(syn.seq);
  applySynOptions(c, syn.options, now);
  // RFC 7323 §2.2: the window field of a SYN is never scaled.
  c.snd.wnd = syn.window;
  c.snd.maxWnd = syn.window;
  c.snd.wl1 = syn.seq;
  c.snd.wl2 = iss;
  c.rcv.adv = c.rcv.nxt;
  c.lastReceived = now;
  c.transition(TcpState.SYN_RECEIVED, `SYN to listener :${port}`);
  sendSyn(c, now);
}

/**
 * The ACK that returns a valid SYN cookie (RFC 4987 §3.6; syncookie.ts): rebuild SYN-RECEIVED as
 * if the SYN had been queued and our SYN-ACK sent, then the caller hands the ACK to
 * `onSegment`, which completes the handshake as for any other. `synOptions` is what the cookie
 * recovered of the SYN: the MSS from the ISN and, when the ACK echoed our cookie TSval, the window
 * scale, SACK-permitted and the timestamps themselves (TS.Recent starts at the ACK's TSval, as in
 * Linux's cookie_v4_check). Without timestamps: no window scaling (the window stays under 64 KiB
 * for the connection's life, RFC 7323 §2.2) and no SACK, as Linux.
 */
export function openFromCookie(
  c: Connection,
  ack: TcpSegment,
  synOptions: TcpOptions,
  tsOffset: number | undefined,
  synAckWindow: number,
  port: number,
  now: number,
): void {
  const iss = seqAdd(ack.ack, -1);
  const irs = seqAdd(ack.seq, -1);
  c.snd.init(iss);
  c.rcv.init(irs);
  c.ts = tsOffset !== undefined && synOptions.timestamp !== undefined ? new Timestamps(tsOffset) : undefined;
  applySynOptions(c, synOptions, now);
  c.snd.wl1 = irs;
  c.snd.wl2 = iss;
  // What our cookie SYN-ACK offered (never scaled, RFC 7323 §2.2): the peer may already send that much.
  c.rcv.adv = seqAdd(c.rcv.nxt, synAckWindow);
  c.lastReceived = now;
  c.transition(TcpState.SYN_RECEIVED, `SYN cookie returned to listener :${port}`);
}

/** Our SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED), first or retransmitted. */
export function sendSyn(c: Connection, now: number): void {
  const flags = c.state === TcpState.SYN_RECEIVED ? SYN | ACK : SYN;
  // Like Linux: <mss, sackOK, TS val ecr, nop, wscale> (segment.ts lays them out).
  const opts: TcpOptions = { mss: c.rcv.mss };
  if (c.state === TcpState.SYN_SENT) {
    // RFC 7323 §2.2, §3.2, RFC 2018 §2: a SYN offers scaling, timestamps (TSecr 0) and SACK.
    opts.wscale = offeredWscale(c);
    if (c.config.sack) opts.sackPermitted = true;
    if (c.ts) opts.timestamp = { value: c.ts.value(now), echo: 0 };
  } else {
    // A SYN-ACK agrees only to what the peer's SYN offered.
    if (c.wscaleOk) opts.wscale = c.rcv.wscale;
    if (c.sackOk) opts.sackPermitted = true;
    if (c.ts?.enabled) opts.timestamp = { value: c.ts.value(now), echo: c.ts.echo() };
  }
  c.snd.timeSyn(now);
  c.emitSegment(c.snd.iss, 0, flags, now, opts);
  c.timers.retransmitAt = now + c.snd.rto.rto;
  c.host.reschedule(c);
}

/**
 * The window scale we offer: the configured shift, but never so large that one unit of window
 * (2^shift bytes) exceeds the step by which receiver SWS avoidance opens it, min(rcvBuf/2, MSS)
 * (RFC 1122 §4.2.3.3). With a coarser unit an opening could round down to nothing, and with a
 * receive buffer smaller than one unit a closed window could never open again.
 */
function offeredWscale(c: Connection): number {
  return offeredWscaleFor(c.config, c.rcv.mss);
}

/** offeredWscale for a receive MSS of `rcvMss` (also what a SYN cookie SYN-ACK offers). */
export function offeredWscaleFor(config: TcpConfig, rcvMss: number): number {
  const step = Math.min(config.rcvBuf / 2, rcvMss);
  let shift = config.wscale;
  while (shift > 0 && 2 ** shift > step) shift--;
  return shift;
}

function applySynOptions(c: Connection, o: TcpOptions, now: number): void {
  // RFC 9293 §3.7.1: the peer's MSS bounds our segments; without the option, 536.
  const peerMss = o.mss !== undefined && o.mss > 0 ? o.mss : 536;
  // A floor of 64 keeps a hostile peer from asking for 1-byte segments, but our own link's
  // limit (rcv.mss = MTU - 40) and the path's (RFC 1191, lowered by ICMP) come last: on a link under 104 bytes a 64-byte segment would
  // not fit, and every data segment would be dropped before it left.
  const mss = Math.min(Math.max(64, peerMss), c.rcv.mss, c.snd.pathMss);
  // RFC 7323 §2.2: scaling is on only when both SYNs carry the option (we always offer it).
  c.wscaleOk = o.wscale !== undefined;
  c.snd.wscale = c.wscaleOk ? Math.min(o.wscale!, 14) : 0;
  c.rcv.wscale = c.wscaleOk ? offeredWscale(c) : 0;
  // RFC 7323 §3.2: timestamps are used only when both SYNs carry them; the peer's TSval starts
  // TS.Recent. RFC 2018 §2: SACK only when both SYNs carry SACK-permitted.
  if (c.ts !== undefined && o.timestamp !== undefined) {
    c.ts.enabled = true;
    c.ts.onSyn(o.timestamp.value, now);
  } else {
    c.ts = undefined;
  }
  c.sackOk = c.config.sack && o.sackPermitted === true;
  // Every segment carries the timestamps option: its bytes come out of the MSS (RFC 6691 §2, as
  // Linux's mss_cache), so header + options + data still fit the MTU.
  c.snd.mss = Math.max(mss - (c.ts ? TS_OPTION_LEN : 0), 1);
  // The SACK state (snd.recovery, rcv.sack) is created when first needed.
  c.snd.recovery = undefined;
  c.rcv.sack = undefined;
  c.snd.cc.setMss(c.snd.mss);
}

/** §3.10.7.3: SEGMENT ARRIVES in SYN-SENT. */
export function synSentArrives(c: Connection, seg: TcpSegment, now: number): void {
  const flags = seg.flags;
  let ackOk = false;
  // first: check the ACK bit
  if (flags & ACK) {
    if (seqLeq(seg.ack, c.snd.iss) || seqGt(seg.ack, c.snd.max)) {
      if (!(flags & RST)) c.emitRst(seg.ack, now);
      c.host.count('tcp.drop.bad-ack');
      return;
    }
    ackOk = true;
  }
  // second: check the RST bit
  if (flags & RST) {
    if (ackOk) {
      c.host.count('tcp.rst.in');
      c.fail('ECONNREFUSED', 'connection refused', 'RST in SYN-SENT');
    }
    return;
  }
  // fourth: check the SYN bit
  if (!(flags & SYN)) return;
  c.rcv.init(seg.seq);
  // The peer may send as much as our SYN's (unscaled) window allowed.
  c.rcv.adv = seqAdd(c.rcv.nxt, Math.min(c.config.rcvBuf, 65535));
  applySynOptions(c, seg.options, now);
  c.snd.wnd = seg.window; // never scaled in a SYN (RFC 7323 §2.2)
  c.snd.maxWnd = seg.window;
  c.snd.wl1 = seg.seq;
  c.snd.wl2 = seg.ack;
  if (ackOk) synAckArrives(c, seg, now);
  else {
    // Simultaneous open (§3.5, figure 8): answer with SYN-ACK from SYN-RECEIVED.
    c.transition(TcpState.SYN_RECEIVED, 'SYN received (simultaneous open)');
    c.snd.retries = 0;
    sendSyn(c, now);
  }
}

/** §3.10.7.3 fourth, our SYN acknowledged: ESTABLISHED, then any data or FIN it carries. */
function synAckArrives(c: Connection, seg: TcpSegment, now: number): void {
  c.snd.synAcked(seg.ack, now);
  c.transition(TcpState.ESTABLISHED, 'SYN-ACK received');
  c.scheduleAck();
  established(c, now);
  // Data or FIN on the SYN-ACK: continue at the sixth step.
  if (seg.payload.length > 0 && c.state === TcpState.ESTABLISHED) c.rcv.text(c.rcv.nxt, seg.payload, false, now);
  if (seg.flags & FIN && c.state === TcpState.ESTABLISHED) c.receiveFin(now, 'FIN on SYN-ACK');
}

/**
 * SYN-RECEIVED: the peer retransmitted its SYN, so our SYN-ACK was probably lost. Answer with the
 * SYN-ACK again at once (as Linux does) rather than the bare ACK of the sequence check, which a
 * peer in SYN-SENT can only drop. Returns true when the segment was such a SYN.
 */
export function synRetransmitted(c: Connection, seg: TcpSegment, now: number): boolean {
  if (c.state !== TcpState.SYN_RECEIVED || !(seg.flags & SYN) || seg.flags & (ACK | RST) || seg.seq !== c.rcv.irs) return false;
  c.host.count('tcp.syn.retransmitted-in');
  c.snd.retransmits++;
  sendSyn(c, now);
  c.snd.forgetRttSample(); // Karn: the answer may be to either SYN-ACK
  return true;
}

/**
 * Simultaneous open (§3.5 figure 8, line 6): the peer's SYN-ACK repeats the SYN we already
 * acknowledged, so it lies just before RCV.NXT; its ACK of our SYN still completes the
 * handshake (Linux lets it pass the sequence check the same way). The old SYN is trimmed.
 */
export function crossedSynAck(c: Connection, seg: TcpSegment): boolean {
  return c.state === TcpState.SYN_RECEIVED && c.activeOpen && (seg.flags & (SYN | ACK)) === (SYN | ACK) && seqAdd(seg.seq, 1) === c.rcv.nxt;
}

/** §3.10.7.4 fifth, SYN-RECEIVED: an ACK of our SYN completes the handshake. Returns false to drop the segment. */
export function synReceivedAck(c: Connection, seg: TcpSegment, now: number): boolean {
  if (!(seqLt(c.snd.una, seg.ack) && seqLeq(seg.ack, c.snd.max))) {
    // <SEQ=SEG.ACK><CTL=RST>
    c.host.count('tcp.drop.bad-ack');
    c.emitRst(seg.ack, now);
    return false;
  }
  c.snd.wnd = seg.window << c.snd.wscale;
  c.snd.maxWnd = Math.max(c.snd.maxWnd, c.snd.wnd);
  c.snd.wl1 = seg.seq;
  c.snd.wl2 = seg.ack;
  c.snd.synAcked(seg.ack, now);
  c.transition(TcpState.ESTABLISHED, 'ACK of our SYN');
  established(c, now);
  // A CLOSE issued in SYN-RECEIVED was queued until now (§3.10.4).
  if (c.finQueued) c.transition(TcpState.FIN_WAIT_1, 'close (queued in SYN-RECEIVED)');
  return true;
}

/** The handshake is complete: a passive connection goes to its listener's accept queue. */
function established(c: Connection, now: number): void {
  if (c.keepalive.enabled) c.timers.keepaliveAt = now + c.keepalive.idle;
  if (c.listener) c.host.established(c);
  else c.user.onConnect?.();
  c.markDirty();
  c.host.reschedule(c);
}
