// The README's example runs as written, against the built package, in a fresh process.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Runs the first ```js block under `heading` in a fresh process; returns its output lines. */
function runBlock(heading: string): string[] {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  const block = readme.split(`\n${heading}\n`)[1]?.match(/```js\n([\s\S]*?)```/)?.[1];
  expect(block, `README has a \`\`\`js block under ${heading}`).toBeTruthy();
  // Inside the package directory, so `import 'inception-wasm'` resolves to the package itself.
  const file = `${root}test/.readme-example.mjs`;
  writeFileSync(file, block!);
  try {
    return execFileSync(process.execPath, [file], { cwd: root, encoding: 'utf8' }).trim().split('\n');
  } finally {
    rmSync(file, { force: true });
  }
}

it('the README\'s photo example runs and prints what its comments say', () => {
  const out = runBlock('## Classify a photo');
  const labels = JSON.parse(out[0]!) as string[];
  const classes = JSON.parse(readFileSync(`${root}test/fixtures/imagenet_classes.json`, 'utf8')) as string[];
  expect(labels).toHaveLength(5);
  for (const label of labels) expect(classes).toContain(label);
  expect(out[1]).toBe('[ 1, 3, 224, 224 ] 451 300 405900');
});

it('the README example runs and prints what its comments say', () => {
  const out = runBlock('## Example');
  expect(out[0]).toBe('[ 1, 256, 28, 28 ]');
  expect(out[1]).toBe('6994392');
  const top5 = JSON.parse(out.slice(2).join('').replace(/\s/g, '')) as number[];
  expect(top5).toHaveLength(5);
  expect(new Set(top5).size).toBe(5);
});
