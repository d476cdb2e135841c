// The GEMM microkernels on the wasm target, bit for bit against their scalar twins
// (crates/kernels/src/gemm/twins.rs, through the never-shipped `testing` build in
// target/testing/): simd128 against the plain twin; in the relaxed-SIMD run
// (TEST_SIMD=relaxed) relaxed_madd against the fused (`mul_add`) twin, or the plain one
// where the engine does not fuse — the same choice for every element.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

interface TestingGlue {
  initSync(options: { module: BufferSource }): unknown;
  microkernelTwins(fused: boolean): number;
  relaxedBuild(): boolean;
}

const relaxed = process.env.TEST_SIMD === 'relaxed';
const root = new URL('../target/testing/', import.meta.url);
const gluePath = new URL('wasm/inception_wasm.js', root).href;
const glue = (await import(/* @vite-ignore */ gluePath)) as TestingGlue;
glue.initSync({ module: readFileSync(new URL(`${relaxed ? 'wasm-relaxed' : 'wasm'}/inception_wasm_bg.wasm`, root)) });

/** Kernel calls per pass: 16 k × 2 ReLU × 2 ldb × (4·8 tiles × 2 B layouts + 8·4 tail tiles). */
const CALLS = 16 * 2 * 2 * (4 * 8 * 2 + 8 * 4);

it(`${relaxed ? 'relaxed-SIMD' : 'simd128'} microkernels (4×8 and the 8×4 tail) equal their scalar twins bit for bit over every k edge, tile clip, B layout, ReLU and special value`, () => {
  expect(glue.relaxedBuild()).toBe(relaxed);
  if (!relaxed) {
    expect(glue.microkernelTwins(false)).toBe(CALLS);
    return;
  }
  let fused: number | Error;
  try {
    fused = glue.microkernelTwins(true);
  } catch (e) {
    fused = e as Error;
  }
  if (typeof fused === 'number') {
    expect(fused).toBe(CALLS);
  } else {
    // An engine that does not fuse relaxed_madd must then match the plain twin exactly.
    console.log(`relaxed_madd is not fused here (${fused.message}); comparing with the plain twin`);
    expect(glue.microkernelTwins(false)).toBe(CALLS);
  }
});
