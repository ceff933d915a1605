import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/runtime/random.js';
import {
  CHALLENGE_ACKS_PER_SECOND,
  ChallengeAckBudget,
  INVALID_REPLY_INTERVAL_MS,
  invalidReplyAllowed,
  invalidReplyLimitApplies,
} from '../../src/tcp/ratelimit.js';

describe('invalidReplyAllowed (per connection, like tcp_invalid_ratelimit)', () => {
  it('allows one reply per 500 ms: 1000 bad segments 2.7 ms apart get 6 answers', () => {
    let last = -Infinity;
    let replies = 0;
    for (let i = 0; i < 1000; i++) {
      const now = 10_000 + i * 2.7;
      if (invalidReplyAllowed(last, now)) {
        replies++;
        last = now;
      }
    }
    // 2.7 s of segments: at 0, 500.4, 1000.8, 1501.2, 2001.6, 2502 ms.
    expect(replies).toBe(6);
  });
  it('limits from the last reply, not the last segment, and not after a clock step back', () => {
    expect(invalidReplyAllowed(-Infinity, 0)).toBe(true);
    expect(invalidReplyAllowed(1000, 1000 + INVALID_REPLY_INTERVAL_MS - 1)).toBe(false);
    expect(invalidReplyAllowed(1000, 1000 + INVALID_REPLY_INTERVAL_MS)).toBe(true);
    expect(invalidReplyAllowed(1000, 999)).toBe(true);
  });
  it('applies to segments without data (and SYNs); a data segment is always answered', () => {
    expect(invalidReplyLimitApplies(0, false)).toBe(true);
    expect(invalidReplyLimitApplies(0, true)).toBe(true);
    expect(invalidReplyLimitApplies(100, true)).toBe(true);
    expect(invalidReplyLimitApplies(100, false)).toBe(false);
  });
});

describe('ChallengeAckBudget (stack-wide, randomised: the CVE-2016-5696 fix)', () => {
  /** How many challenge ACKs one second allows when an attacker asks for 5000. */
  const spend = (budget: ChallengeAckBudget, second: number) => {
    let n = 0;
    for (let i = 0; i < 5000; i++) if (budget.take(second * 1000 + i * 0.1)) n++;
    return n;
  };

  it('allows between limit/2 and 3·limit/2 per second, a different count each second', () => {
    const budget = new ChallengeAckBudget(CHALLENGE_ACKS_PER_SECOND, seededRandom(5961));
    const counts = Array.from({ length: 50 }, (_, s) => spend(budget, s));
    for (const n of counts) {
      expect(n).toBeGreaterThanOrEqual(CHALLENGE_ACKS_PER_SECOND / 2);
      expect(n).toBeLessThanOrEqual((3 * CHALLENGE_ACKS_PER_SECOND) / 2 + 1);
    }
    // An attacker who learns one second's count learns nothing about the next.
    expect(new Set(counts).size).toBeGreaterThan(40);
  });
  it('draws its budget from the randomness it is given', () => {
    expect(spend(new ChallengeAckBudget(100, () => 0), 0)).toBe(50);
    expect(spend(new ChallengeAckBudget(100, () => 0.999), 0)).toBe(150);
  });
});
