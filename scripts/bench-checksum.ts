/** Microbenchmark (not a test): throughput of checksumPartial over a 1500-byte packet. Run: npx tsx scripts/bench-checksum.ts */
import { checksumPartial } from '../src/ip/checksum.js';

const buf = new Uint8Array(1500).map((_, i) => (i * 131 + 7) & 0xff);
let sink = 0;
for (let i = 0; i < 50_000; i++) sink ^= checksumPartial(buf, 0, buf.length); // warm up the JIT
const rounds = 1_000_000;
const t0 = performance.now();
for (let i = 0; i < rounds; i++) sink ^= checksumPartial(buf, 0, buf.length);
const ms = performance.now() - t0;
console.log(`checksumPartial, 1500-byte buffer: ${((rounds * buf.length) / 1e6 / (ms / 1000)).toFixed(0)} MB/s (sink ${sink})`);
