import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/e2e (browsers, workerd, the packed tarball) has its own config and script:
    // npm run test:e2e (vitest.e2e.config.ts).
    exclude: [...configDefaults.exclude, 'test/e2e/**'],
    // Whole-network fixture cases run GoogLeNet several times; generous limits keep a
    // loaded CI machine from failing them on time alone (speed is the benchmarks' job).
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
