import { defineConfig } from 'vitest/config';

// End-to-end runtimes (npm run test:e2e): headless Chromium, workerd, the packed tarball
// installed into a fresh project. One file at a time: each starts browsers, servers or
// npm, and the machine has 2 cores.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
