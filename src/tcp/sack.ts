/**
 * Selective acknowledgments (RFC 2018) on both sides of a connection.
 *
 * Sender: the scoreboard. Every segment sent and not yet cumulatively acknowledged is one
 * record — its sequence range, when it was last sent, whether the peer SACKed it, whether it
 * is deemed lost, and whether it has been retransmitted since. From the records come RFC 6675's
 * quantities: IsLost (DupThresh SACKed segments or more than (DupThresh-1)*SMSS SACKed bytes
 * above), `pipe` (bytes still in the network), NextSeg (the next hole to retransmit) and the
 * rescue retransmission. RACK-TLP (rack.ts) reads the same records in the order they were sent.
 *
 *    SND.UNA                                                        SND.MAX
 *      | lost  |rexmit |  sacked  | lost  | sacked | sacked | in flight |
 *      +-------+-------+----------+-------+--------+--------+-----------+
 *  pipe counts:  yes      no        no       no       no         yes
 *
 * Receiver: `SackReporter` chooses the blocks an ACK carries: a D-SACK block first when a
 * duplicate arrived (RFC 2883), then the out-of-order ranges, most recently changed first
 * (RFC 2018 §4).
 *
 * Hostile input: the blocks come from the peer. A block outside SND.UNA..SND.MAX, reversed or
 * empty is ignored (counted by the caller); overlaps are harmless (a record is SACKed once).
 * The number of records is bounded (`maxRecords`): beyond it new data joins the last record and
 * partly covered records are not split, so a peer SACKing thousands of tiny pieces costs at most
 * O(blocks x maxRecords) per ACK (an ACK carries at most 4 blocks) and no memory beyond the bound.
 * SACK information is advisory (RFC 2018 §8): nothing is freed until it is cumulatively
 * acknowledged, so a lying peer can at worst make us retransmit less eagerly, never lose data.
 */
import { seqAdd, seqGeq, seqGt, seqLeq, seqLt, seqSub } from './seq.js';

/** RFC 6675 §2 / RFC 5681: duplicate threshold. */
export const DUP_THRESH = 3;

/**
 * A class rather than object literals: one record is made per segment sent, and a constructor
 * gives every record the same shape from the start (measured: the literal, whose `prev`/`next`
 * begin as undefined and later hold records, was the costliest line of the send path).
 */
export class SentRecord {
  /** How many times it was sent (1 = once). */
  xmits = 1;
  sacked = false;
  /** Deemed lost (RFC 6675 IsLost, RACK, or a timeout) and not delivered since. */
  lost = false;
  /** Retransmitted after being marked lost; in the network again (counts in pipe). */
  retrans = false;
  /** Time-ordered list (oldest transmission first), for RACK. */
  prev: SentRecord | undefined = undefined;
  next: SentRecord | undefined = undefined;

  constructor(
    public start: number,
    public end: number,
    /** Time of the last transmission (ms). */
    public xmitTs: number,
    /** Which transmission of the connection that was (a count): orders two sent in the same ms. */
    public xmitOrder: number,
  ) {}
}

/** What one ACK told the scoreboard. */
export interface SackResult {
  /** Records delivered by this ACK (cumulatively or newly SACKed), in no particular order. */
  delivered: SentRecord[];
  /** Bytes newly SACKed. */
  newlySacked: number;
  /** The D-SACK block (RFC 2883), if the first block reported a duplicate. */
  dsack: [number, number] | undefined;
  /** Blocks ignored as invalid (outside SND.UNA..SND.MAX, empty, reversed). */
  invalid: number;
}

export class Scoreboard {
  /** Records by sequence, from #head on (earlier entries were acknowledged and are dropped lazily). */
  #recs: SentRecord[] = [];
  #head = 0;
  #oldest: SentRecord | undefined;
  #newest: SentRecord | undefined;
  /** Sequence-space bytes in records, SACKed, and lost-but-not-retransmitted. */
  #outstanding = 0;
  #sackedBytes = 0;
  #sackedCount = 0;
  #lostWaiting = 0;
  /** Transmissions so far (SentRecord.xmitOrder). */
  #sends = 0;
  /**
   * The one result onAck fills in and returns (it runs on every ACK of a SACK connection: a fresh
   * object and array each time were a measurable share of the request path's garbage).
   */
  readonly #result: SackResult = { delivered: [], newlySacked: 0, dsack: undefined, invalid: 0 };
  /** RFC 6675 RescueRxt: the RecoveryPoint of the recovery that already had its rescue. */
  #rescueFor: number | undefined;

  constructor(
    readonly maxRecords = 4096,
    public mss = 1460,
  ) {}

  get size(): number {
    return this.#recs.length - this.#head;
  }

  /** Bytes in the network by RFC 6675's SetPipe: not SACKed and (not lost or retransmitted). */
  get pipe(): number {
    return this.#outstanding - this.#sackedBytes - this.#lostWaiting;
  }

  get sackedBytes(): number {
    return this.#sackedBytes;
  }

  get sackedCount(): number {
    return this.#sackedCount;
  }

  /** SACKed segments where a rule counts segments: a record sent as a super-segment (offload)
   *  counts as the MSS-sized segments it was cut into. */
  get sackedSegments(): number {
    return Math.max(this.#sackedCount, Math.ceil(this.#sackedBytes / this.mss));
  }

  /** Bytes marked lost and not yet retransmitted. */
  get lostBytes(): number {
    return this.#lostWaiting;
  }

  /** Records in sequence order. */
  *records(): IterableIterator<SentRecord> {
    for (let i = this.#head; i < this.#recs.length; i++) yield this.#recs[i]!;
  }

  /** Records from the oldest transmission to the newest (RACK's order). */
  *byTime(): IterableIterator<SentRecord> {
    for (let r = this.#oldest; r !== undefined; r = r.next) yield r;
  }

  /** The record sent longest ago and not yet delivered: the head of the time-ordered list
   *  (`next` leads to newer ones). RACK walks it on every ACK, without an iterator. */
  get oldestSent(): SentRecord | undefined {
    return this.#oldest;
  }

  first(): SentRecord | undefined {
    return this.#recs[this.#head];
  }

  last(): SentRecord | undefined {
    return this.#head < this.#recs.length ? this.#recs[this.#recs.length - 1] : undefined;
  }

  /**
   * `len` sequence numbers from `start` went out at `now`. New data (at the tail) becomes a new
   * record; data sent before is a retransmission of the records it covers.
   */
  onSend(start: number, len: number, now: number): void {
    if (len <= 0) return;
    const end = seqAdd(start, len);
    const last = this.last();
    if (last === undefined || seqGeq(start, last.end)) {
      if (last !== undefined && start !== last.end) return; // a gap: not ours to record (caller bug)
      if (this.size >= this.maxRecords && last !== undefined && !last.sacked && !last.lost) {
        // At the bound: the new bytes join the last record (coarser, never unbounded).
        this.#outstanding += len;
        last.end = end;
        last.xmitTs = now;
        last.xmitOrder = ++this.#sends;
        this.#toNewest(last);
        return;
      }
      const rec = new SentRecord(start, end, now, ++this.#sends);
      this.#recs.push(rec);
      this.#outstanding += len;
      this.#link(rec);
      return;
    }
    // A retransmission: every record it covers (split at `end` if it covers a record partly).
    let i = this.#indexOf(start);
    if (i < 0) return;
    const first = this.#recs[i]!;
    if (seqLt(first.start, start)) {
      if (!this.#split(i, start)) return; // cannot represent it: leave the record as it was
      i++;
    }
    for (; i < this.#recs.length; i++) {
      const r = this.#recs[i]!;
      if (seqGeq(r.start, end)) break;
      // At the record bound the record cannot be split: it counts as resent as a whole. (Counting
      // it only when most of it was resent left a big lost record lost after the sender resent its
      // first MSS, so NextSeg offered the same bytes again, and the sender resent them again and
      // again within one cwnd check. Its other bytes are resent when RACK or the timeout marks it
      // lost again, or once the cumulative ACK trims it.)
      if (seqGt(r.end, end)) this.#split(i, end);
      if (r.sacked) continue;
      r.xmitTs = now;
      r.xmitOrder = ++this.#sends;
      r.xmits++;
      if (r.lost && !r.retrans) {
        r.retrans = true;
        this.#lostWaiting -= this.#len(r);
      }
      this.#toNewest(r);
    }
  }

  /**
   * An ACK arrived: cumulative `una` and SACK `blocks` (as parsed; hostile), with `sndMax` the
   * highest sequence number sent. The result is valid until the next call (it is reused).
   */
  onAck(una: number, blocks: ReadonlyArray<readonly [number, number]> | undefined, sndMax: number): SackResult {
    const res = this.#result;
    res.delivered = []; // a fresh empty array is cheaper than truncating (length = 0 is a runtime call in V8)
    res.newlySacked = 0;
    res.dsack = undefined;
    res.invalid = 0;
    this.#ackUpTo(una, res);
    if (blocks === undefined) return res;
    for (let b = 0; b < blocks.length && b < 4; b++) {
      const [left, right] = blocks[b]!;
      // RFC 2883 §4: a D-SACK block is the first one, and lies below the cumulative ACK or inside
      // the second block. It reports a duplicate; it SACKs nothing new.
      if (b === 0 && seqLt(left, right)) {
        const second = blocks[1];
        if (seqLeq(right, una) || (second !== undefined && seqLeq(second[0], left) && seqLeq(right, second[1]) && seqLt(second[0], second[1]))) {
          res.dsack = [left, right];
          continue;
        }
      }
      // RFC 2018 §3: a block is [left, right) with SND.UNA < left < right <= SND.MAX; anything
      // else is not about data we have outstanding.
      if (!(seqLt(left, right) && seqLeq(una, left) && seqLeq(right, sndMax))) {
        res.invalid++;
        continue;
      }
      this.#markSacked(left, right, res);
    }
    return res;
  }

  /**
   * RFC 6675 IsLost for every record: an un-SACKed record is lost when DupThresh or more records
   * above it are SACKed, or more than (DupThresh - 1) * SMSS SACKed bytes lie above it. Both
   * counts grow towards SND.UNA, so one walk from the top marks everything below the first record
   * that qualifies. Returns the bytes newly marked lost. O(records).
   */
  markLostByDupThresh(): number {
    if (this.#sackedCount === 0) return 0;
    let count = 0;
    let bytes = 0;
    let marked = 0;
    for (let i = this.#recs.length - 1; i >= this.#head; i--) {
      const r = this.#recs[i]!;
      if (r.sacked) {
        // A record sent as one super-segment (offload) counts as the segments it was cut into.
        const n = this.#len(r);
        count += Math.max(1, Math.ceil(n / this.mss));
        bytes += n;
        continue;
      }
      if (count >= DUP_THRESH || bytes > (DUP_THRESH - 1) * this.mss) {
        if (!r.lost) marked += this.markLost(r);
      }
    }
    return marked;
  }

  /** Mark one record lost (RACK, RFC 6675, timeout); a retransmission of it is then lost too. */
  markLost(r: SentRecord): number {
    if (r.sacked || (r.lost && !r.retrans)) return 0;
    r.lost = true;
    r.retrans = false;
    const n = this.#len(r);
    this.#lostWaiting += n;
    return n;
  }

  /**
   * Retransmission timeout: everything not SACKed is lost (as Linux's tcp_enter_loss). SACK
   * information is kept — unless the segment at SND.UNA itself is marked SACKed: a receiver that
   * SACKed it would have acknowledged it cumulatively by now, so it reneged or lied (RFC 2018 §8),
   * and every SACK mark is dropped (Linux's tcp_check_sack_reneging). Returns true in that case.
   */
  markAllLost(): boolean {
    const reneged = this.first()?.sacked === true;
    for (let i = this.#head; i < this.#recs.length; i++) {
      const r = this.#recs[i]!;
      if (reneged && r.sacked) {
        r.sacked = false;
        this.#sackedBytes -= this.#len(r);
        this.#sackedCount--;
      }
      this.markLost(r);
    }
    if (reneged) this.#rebuildTimeList();
    return reneged;
  }

  /** Re-create the time-ordered list from every un-SACKed record (after reneging). */
  #rebuildTimeList(): void {
    const live: SentRecord[] = [];
    for (let i = this.#head; i < this.#recs.length; i++) if (!this.#recs[i]!.sacked) live.push(this.#recs[i]!);
    live.sort((x, y) => x.xmitTs - y.xmitTs || x.xmitOrder - y.xmitOrder || seqSub(x.start, y.start));
    this.#oldest = this.#newest = undefined;
    for (const r of live) this.#link(r);
  }

  /**
   * RFC 6675 NextSeg rule (1): the first record that is lost, not SACKed and not yet
   * retransmitted — [start, end) to send (the caller cuts it to one SMSS). Rule (2), new data,
   * is the caller's; rule (3) (retransmitting data not yet deemed lost) is left out, as Linux
   * does; the rescue retransmission (rule 4) is `rescue()`.
   */
  nextLost(): SentRecord | undefined {
    if (this.#lostWaiting === 0) return undefined;
    for (let i = this.#head; i < this.#recs.length; i++) {
      const r = this.#recs[i]!;
      if (r.lost && !r.retrans && !r.sacked) return r;
    }
    return undefined;
  }

  /**
   * RFC 6675 NextSeg rule (4), the rescue retransmission: once per recovery (identified by its
   * RecoveryPoint), the highest un-SACKed record that has not been retransmitted, if data above
   * the last retransmission is still unaccounted for.
   */
  rescue(recoveryPoint: number): SentRecord | undefined {
    if (this.#rescueFor === recoveryPoint) return undefined;
    for (let i = this.#recs.length - 1; i >= this.#head; i--) {
      const r = this.#recs[i]!;
      if (r.sacked) continue;
      if (r.retrans || r.xmits > 1) return undefined;
      this.#rescueFor = recoveryPoint;
      return r;
    }
    return undefined;
  }

  /** Forget everything (connection closed). */
  clear(): void {
    this.#recs = [];
    this.#head = 0;
    this.#oldest = this.#newest = undefined;
    this.#outstanding = this.#sackedBytes = this.#sackedCount = this.#lostWaiting = 0;
    this.#rescueFor = undefined;
  }

  // ------------------------------------------------------------------------------------------

  #len(r: SentRecord): number {
    return seqSub(r.end, r.start);
  }

  #ackUpTo(una: number, res: SackResult): void {
    const recs = this.#recs;
    while (this.#head < recs.length) {
      const r = recs[this.#head]!;
      if (seqLeq(r.end, una)) {
        this.#forget(r);
        if (!r.sacked) res.delivered.push(r);
        this.#head++;
        continue;
      }
      if (seqLt(r.start, una)) {
        // Partly acknowledged (a peer may ACK inside a segment): trim it.
        const cut = seqSub(una, r.start);
        this.#outstanding -= cut;
        if (r.sacked) this.#sackedBytes -= cut;
        else if (r.lost && !r.retrans) this.#lostWaiting -= cut;
        r.start = una;
      }
      break;
    }
    if (this.#head === recs.length) {
      // Everything acknowledged: let go of the records (an idle connection keeps none).
      recs.length = 0;
      this.#head = 0;
    } else if (this.#head > 64 && this.#head * 2 > recs.length) {
      this.#recs = recs.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Remove a fully acknowledged record from the counters and the time list. */
  #forget(r: SentRecord): void {
    const n = this.#len(r);
    this.#outstanding -= n;
    if (r.sacked) {
      this.#sackedBytes -= n;
      this.#sackedCount--;
    } else if (r.lost && !r.retrans) {
      this.#lostWaiting -= n;
    }
    this.#unlink(r);
  }

  #markSacked(left: number, right: number, res: SackResult): void {
    let i = this.#indexOf(left);
    if (i < 0) return;
    for (; i < this.#recs.length; i++) {
      let r = this.#recs[i]!;
      if (seqGeq(r.start, right)) break;
      if (r.sacked) continue;
      if (seqLt(r.start, left)) {
        // The block starts inside this record: SACK only the part it covers, if we can split.
        if (!this.#split(i, left)) continue;
        continue; // the loop moves on to the new right-hand piece
      }
      if (seqGt(r.end, right)) {
        if (!this.#split(i, right)) break;
        r = this.#recs[i]!;
      }
      const n = this.#len(r);
      if (r.lost && !r.retrans) this.#lostWaiting -= n;
      r.sacked = true;
      r.lost = false;
      r.retrans = false;
      this.#sackedBytes += n;
      this.#sackedCount++;
      res.newlySacked += n;
      res.delivered.push(r);
      this.#unlink(r);
    }
  }

  /** Split record i at `at` (strictly inside it) into two with the same state. False at the bound. */
  #split(i: number, at: number): boolean {
    if (this.size >= this.maxRecords) return false;
    const r = this.#recs[i]!;
    if (!(seqLt(r.start, at) && seqLt(at, r.end))) return false;
    const right = new SentRecord(at, r.end, r.xmitTs, r.xmitOrder);
    right.xmits = r.xmits;
    right.sacked = r.sacked;
    right.lost = r.lost;
    right.retrans = r.retrans;
    r.end = at;
    this.#recs.splice(i + 1, 0, right);
    if (!r.sacked) {
      // Same transmission time: right after r in the time list.
      right.prev = r;
      right.next = r.next;
      if (r.next) r.next.prev = right;
      else this.#newest = right;
      r.next = right;
    } else {
      this.#sackedCount++;
    }
    return true;
  }

  /** Index of the first record ending after `seq` (it contains `seq`, or lies above it), or -1. */
  #indexOf(seq: number): number {
    const recs = this.#recs;
    let lo = this.#head;
    let hi = recs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqLeq(recs[mid]!.end, seq)) lo = mid + 1;
      else hi = mid;
    }
    return lo < recs.length ? lo : -1;
  }

  #link(r: SentRecord): void {
    r.prev = this.#newest;
    r.next = undefined;
    if (this.#newest) this.#newest.next = r;
    else this.#oldest = r;
    this.#newest = r;
  }

  #unlink(r: SentRecord): void {
    if (r.prev) r.prev.next = r.next;
    else if (this.#oldest === r) this.#oldest = r.next;
    else return; // not linked (SACKed earlier)
    if (r.next) r.next.prev = r.prev;
    else this.#newest = r.prev;
    r.prev = r.next = undefined;
  }

  #toNewest(r: SentRecord): void {
    if (this.#newest === r) return;
    this.#unlink(r);
    this.#link(r);
  }
}

/**
 * The receiver's side: which SACK blocks an ACK carries. RFC 2018 §4: the first block holds the
 * most recently received segment, then the other ranges, most recently changed first (the
 * out-of-order queue keeps that order). RFC 2883 §4: a duplicate segment is reported once, as
 * the first block; if it lies inside an out-of-order range, that range comes second.
 */
export class SackReporter {
  #dsack: [number, number] | undefined;

  /** A duplicate [start, end) arrived (below RCV.NXT, or already held out of order). */
  duplicate(start: number, end: number): void {
    if (seqLt(start, end)) this.#dsack = [start >>> 0, end >>> 0];
  }

  get pendingDsack(): [number, number] | undefined {
    return this.#dsack;
  }

  /**
   * The blocks for the next ACK, at most `max` (4, or 3 next to timestamps). `ranges` are the
   * out-of-order ranges, most recent first. The pending D-SACK is consumed.
   */
  blocks(ranges: ReadonlyArray<[number, number]>, max: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    if (max <= 0) return out; // no room: a pending D-SACK waits for the next ACK
    const d = this.#dsack;
    this.#dsack = undefined;
    if (d !== undefined) {
      out.push(d);
      const holder = ranges.find(([l, r]) => seqLeq(l, d[0]) && seqLeq(d[1], r));
      if (holder !== undefined && out.length < max) out.push(holder);
      for (const r of ranges) {
        if (out.length >= max) break;
        if (r !== holder) out.push(r);
      }
      return out;
    }
    for (const r of ranges) {
      if (out.length >= max) break;
      out.push(r);
    }
    return out;
  }
}
