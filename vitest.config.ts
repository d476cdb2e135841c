import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Whole-network fixture cases run GoogLeNet several times; generous limits keep a
    // loaded CI machine from failing them on time alone (speed is the benchmarks' job).
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
