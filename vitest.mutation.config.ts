import { defineConfig } from 'vitest/config';

// The tests that can see a mutant in src/tcp, src/ip or the HTTP parser without root: unit,
// simulation and packetdrill. (The interop suites need root and a kernel peer; npm test runs them.)
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/sim/**/*.test.ts', 'test/packetdrill/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
  },
});
