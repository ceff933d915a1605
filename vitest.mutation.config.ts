import { defineConfig } from 'vitest/config';

// The tests that can see a mutant in src/tcp, src/ip or the HTTP parser without root: unit,
// simulation and packetdrill. (The interop suites need root and a kernel peer, and the wire fuzz
// takes minutes per run under instrumentation; npm test runs both.)
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/sim/**/*.test.ts', 'test/packetdrill/**/*.test.ts'],
    exclude: ['test/sim/wire-fuzz.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
  },
});
