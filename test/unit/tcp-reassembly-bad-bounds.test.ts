/**
 * The out-of-order queue's bounds come from the connection's configuration (`oooMaxBytes`): an
 * impossible one is refused at once with a RangeError whose message names the queue and the
 * problem, so a bad configuration is found from the message alone.
 */
import { describe, expect, it } from 'vitest';
import { OutOfOrderQueue } from '../../src/tcp/reassembly.js';

describe('OutOfOrderQueue bounds', () => {
  it('an impossible byte or range bound is a RangeError saying "OutOfOrderQueue: bad bounds"', () => {
    for (const [bytes, ranges] of [[-1, 256], [Number.NaN, 256], [1024, 0], [1024, Number.NaN]] as const) {
      expect(() => new OutOfOrderQueue(bytes, ranges), `${bytes}, ${ranges}`).toThrow(new RangeError('OutOfOrderQueue: bad bounds'));
    }
  });
});
