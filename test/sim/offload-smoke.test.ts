import { describe, expect, it } from 'vitest';
import { createSim, randomBytes, B_ADDR } from '../helpers/sim.js';

describe('smoke', () => {
  it('transfers', async () => {
    const sim = createSim({ offload: true });
    const { clock, a, b } = sim;
    const data = randomBytes(4 << 20, 1);
    const got: Buffer[] = [];
    let ended = false;
    b.createServer((s) => { s.on('data', (d: Buffer) => got.push(d)); s.on('end', () => { ended = true; s.end(); }); }).listen(80);
    await clock.sleep(1);
    const c = a.connect({ host: B_ADDR, port: 80 });
    c.on('connect', () => { c.end(data); });
    await clock.run(() => !ended, 600_000);
    console.log(a.stats(), b.stats()['link.offload.gso.in']);
    expect(Buffer.concat(got).equals(data)).toBe(true);
  });
});
