/**
 * The command-line tool as users get it: the packed tarball installed into a fresh project,
 * its bin run (`node_modules/.bin/inception-wasm`), never the source. Each command on the
 * shared photos and weights, `--json` parsed and checked, bad arguments and bad files
 * (exit codes and messages), a folder with a corrupt image and a text file in it, and the
 * progress line: absent when stderr is a pipe, present under a pseudo-terminal (`script`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GoogLeNet, IMAGENET_CLASSES, init, loadPth, readSafetensors, saveSafetensors } from '../../ts/index.js';
import { root } from './fixture-case.js';

let work: string;
let cli: string;
const photos = `${root}test/fixtures/images`;

/** Runs the installed bin; stdout, stderr and the exit code. */
function run(args: string[], cwd = work) {
  const r = spawnSync(cli, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  work = realpathSync(mkdtempSync(path.join(tmpdir(), 'inception-wasm-cli-')));
  const packed = JSON.parse(execFileSync('npm', ['pack', '--pack-destination', work, '--json', '--loglevel=error'], { cwd: root, encoding: 'utf8' })) as { filename: string }[];
  writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'cli-user', private: true }));
  execFileSync('npm', ['install', path.join(work, packed[0]!.filename), '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: work });
  cli = path.join(work, 'node_modules/.bin/inception-wasm');
  await init();
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('classify', () => {
  it('a folder: valid photos classified, the hostile files reported, exit 1; --json one array in order', () => {
    const r = run(['classify', photos, '--json']);
    expect(r.status).toBe(1);
    const entries = JSON.parse(r.stdout) as { file: string; top?: { index: number; label: string; probability: number }[]; error?: { name: string; message: string } }[];
    const index = JSON.parse(readFileSync(`${photos}/index.json`, 'utf8')) as { cases: { file: string; expect_error?: boolean }[] };
    for (const c of index.cases) {
      const e = entries.find((x) => x.file === path.join(photos, c.file))!;
      expect(e, c.file).toBeDefined();
      if (c.expect_error) {
        expect(e.error?.name).toBe('ImageError');
        expect(e.top).toBeUndefined();
      } else {
        expect(e.top).toHaveLength(5);
        for (const t of e.top!) expect(t.label).toBe(IMAGENET_CLASSES[t.index]);
      }
    }
    expect(entries.map((e) => e.file)).toEqual([...entries.map((e) => e.file)].sort());
    expect(r.stderr).toMatch(/skipped 2 files without an image extension: .*index\.json, .*make_images\.py/);
    expect(r.stderr).toMatch(/random weights, so the labels mean nothing/);
    expect(r.stderr).toMatch(/\d+ classified, 2 failed/);
    expect(r.stderr).not.toContain('\r'); // no progress line when stderr is not a terminal
  });

  it('text: bars and labels per photo, the same answer as the library; --csv rows; --topk', () => {
    const r = run(['classify', `${photos}/chelsea_q90.jpg`, '--topk', '3']);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`${photos}/chelsea_q90.jpg`);
    expect(lines.slice(1, 4).every((l) => /^ {2}[█·]{20} +\d+\.\d %  .+ \(\d+\)$/.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/^1 classified, 0 failed, in \d+\.\d s/);
    const csv = run(['classify', `${photos}/chelsea_q90.jpg`, `${photos}/not_an_image.jpg`, '--csv', '--topk', '2']);
    expect(csv.status).toBe(1);
    expect(csv.stdout.trim().split('\n')).toEqual([
      'file,rank,index,label,probability,error',
      expect.stringMatching(new RegExp(`^${photos}/chelsea_q90\\.jpg,1,683,oboe,0\\.37\\d+,$`)),
      expect.stringMatching(new RegExp(`^${photos}/chelsea_q90\\.jpg,2,\\d+,`)),
      expect.stringMatching(new RegExp(`^${photos}/not_an_image\\.jpg,,,,,ImageError: Error in preprocess: not a JPEG or PNG file`)),
    ]);
  });

  it('a folder with a corrupt photo, a text file and a subfolder: the rest still classified', () => {
    const dir = path.join(work, 'album');
    mkdirSync(path.join(dir, 'sub'), { recursive: true });
    copyFileSync(`${photos}/chelsea_q90.jpg`, path.join(dir, 'cat.jpg'));
    copyFileSync(`${photos}/coffee_tiny_png.png`, path.join(dir, 'sub/coffee.png'));
    writeFileSync(path.join(dir, 'broken.jpg'), readFileSync(`${photos}/chelsea_q90.jpg`).subarray(0, 3000));
    writeFileSync(path.join(dir, 'notes.txt'), 'not a photo');
    const r = run(['classify', 'album', '--json', '--batch', '2']);
    expect(r.status).toBe(1);
    const entries = JSON.parse(r.stdout) as { file: string; top?: unknown[]; error?: { message: string } }[];
    expect(entries.map((e) => [e.file, e.top ? 'top' : 'error'])).toEqual([['album/broken.jpg', 'error'], ['album/cat.jpg', 'top'], ['album/sub/coffee.png', 'top']]);
    expect(entries[0]!.error!.message).toMatch(/JPEG data ends before the image does/);
    expect(r.stderr).toMatch(/skipped 1 file without an image extension: album\/notes\.txt/);
  });

  it('--weights: a .pth and a .safetensors give the model they hold (variant, classes, transform_input)', () => {
    using model = new GoogLeNet({ variant: 'torchvision', numClasses: 10, seed: 4 });
    writeFileSync(path.join(work, 'ten.safetensors'), saveSafetensors(model, { transform_input: 'true' }));
    const r = run(['classify', `${photos}/chelsea_q90.jpg`, '--weights', 'ten.safetensors', '--json', '--topk', '10']);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/weights ten\.safetensors: variant torchvision, 10 classes, transform_input on/);
    const [entry] = JSON.parse(r.stdout) as { top: { index: number; label: string }[] }[];
    expect(entry!.top.map((t) => t.label).sort()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    // convert: safetensors → half, metadata kept; a .pth → safetensors with the same tensors.
    const half = run(['convert', 'ten.safetensors', 'ten-half.safetensors', '--half']);
    expect(half.status, half.stderr).toBe(0);
    const back = readSafetensors(readFileSync(path.join(work, 'ten-half.safetensors')));
    expect(back.metadata.transform_input).toBe('true');
    expect(back.tensors.get('fc.weight')!.shape).toEqual([10, 1024]);
    const pth = `${root}test/fixtures/pth/channels_last_zip.pth`;
    const conv = run(['convert', pth, 'small.safetensors', '--transform-input']);
    expect(conv.status, conv.stderr).toBe(0);
    const converted = readSafetensors(readFileSync(path.join(work, 'small.safetensors')));
    expect(converted.metadata).toMatchObject({ source: 'channels_last_zip.pth', transform_input: 'true' });
    for (const [key, t] of loadPth(readFileSync(pth))) expect(converted.tensors.get(key)!.data).toEqual(t.data);
  });

  it('bad usage is exit 2 with what to do; a missing photo is exit 1', () => {
    const cases: [string[], RegExp][] = [
      [[], /Usage: inception-wasm <command>/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['classify'], /no photos given: name files or folders/],
      [['classify', 'x.jpg', '--topk', 'five'], /--topk must be a positive integer, but got "five"/],
      [['classify', 'x.jpg', '--colour'], /Unknown option '--colour'/],
      [['classify', 'x.jpg', '--weights', 'nope.pth'], /cannot read the weights file nope\.pth/],
      [['classify', 'x.jpg', '--json', '--csv'], /--json and --csv exclude each other/],
      [['convert', 'a.pth'], /convert needs an input and an output file/],
      [['summary', '--input', '1,3,224'], /--input must be four positive integers/],
    ];
    for (const [args, message] of cases) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stdout, args.join(' ')).toBe('');
    }
    const missing = run(['classify', 'missing.jpg', '--json']);
    expect(missing.status).toBe(1);
    expect(JSON.parse(missing.stdout)).toEqual([{ file: 'missing.jpg', error: { name: 'Error', message: expect.stringMatching(/ENOENT/) } }]);
    for (const command of ['classify', 'summary', 'convert', 'info']) {
      const help = run([command, '--help']);
      expect(help.status).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: inception-wasm ${command}`));
    }
  });

  it('a progress line with images/s and ETA under a terminal (script), none in a pipe', () => {
    const r = spawnSync('script', ['-qec', `${cli} classify ${photos} --json > /dev/null`, '/dev/null'], { cwd: work, encoding: 'utf8' });
    expect(r.stdout).toMatch(/\[#+\.*\] \d+\/20 +\d+\.\d img\/s +ETA \d+ s/);
  });
});

describe('robustness', () => {
  it('more than 64 KB of --json through a slow pipe arrives whole; a reader that stops early ends it quietly', () => {
    const names = Array.from({ length: 1500 }, (_, i) => `missing-${i}.jpg`).join(' ');
    const piped = spawnSync('sh', ['-c', `${cli} classify --json ${names} | (sleep 1; cat) | wc -c`], { cwd: work, encoding: 'utf8' });
    const whole = spawnSync('sh', ['-c', `${cli} classify --json ${names} > all.json; wc -c < all.json`], { cwd: work, encoding: 'utf8' });
    expect(Number(whole.stdout)).toBeGreaterThan(200_000);
    expect(Number(piped.stdout)).toBe(Number(whole.stdout));
    expect(JSON.parse(readFileSync(path.join(work, 'all.json'), 'utf8'))).toHaveLength(1500);
    const head = spawnSync('sh', ['-c', `${cli} classify --json ${names} | head -c 10`], { cwd: work, encoding: 'utf8' });
    expect(head.stderr).not.toMatch(/EPIPE|Unhandled/);
  });

  it('weights are told apart by extension, else by their bytes — never by the first byte alone', () => {
    // A safetensors file whose header length is 80 (0x50, a zip's "P"): still safetensors.
    const json = JSON.stringify({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } });
    const header = Buffer.from(json.padEnd(80, ' '));
    const file = Buffer.concat([Buffer.from([80, 0, 0, 0, 0, 0, 0, 0]), header, Buffer.from(new Float32Array([1.5]).buffer)]);
    writeFileSync(path.join(work, 'h80.safetensors'), file);
    writeFileSync(path.join(work, 'h80.dat'), file);
    copyFileSync(`${root}test/fixtures/pth/channels_last_zip.pth`, path.join(work, 'small.dat'));
    for (const input of ['h80.safetensors', 'h80.dat', 'small.dat']) {
      const r = run(['convert', input, `${input}.out.safetensors`]);
      expect(r.status, `${input}: ${r.stderr}`).toBe(0);
    }
    expect(Array.from(readSafetensors(readFileSync(path.join(work, 'h80.dat.out.safetensors'))).tensors.get('x')!.data)).toEqual([1.5]);
  });

  it('options that contradict each other are bad usage (exit 2) before any model is built', () => {
    const r = run(['classify', `${photos}/chelsea_q90.jpg`, '--transform-input']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--transform-input needs the torchvision variant/);
    expect(r.stderr).not.toMatch(/random weights/);
    const s = run(['summary', '--input', '1,1,224,224']);
    expect(s.status).toBe(2);
    expect(s.stderr).toMatch(/--input 1,1,224,224: .*3 channels/);
  });

  it('a symlinked folder is walked, a folder linked into itself only once', () => {
    const dir = path.join(work, 'linked');
    mkdirSync(path.join(dir, 'real'), { recursive: true });
    copyFileSync(`${photos}/coffee_tiny_png.png`, path.join(dir, 'real/coffee.png'));
    symlinkSync(path.join(dir, 'real'), path.join(dir, 'alias'));
    symlinkSync(dir, path.join(dir, 'real/loop'));
    const r = run(['classify', 'linked', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { file: string }[]).map((e) => e.file)).toEqual(['linked/alias/coffee.png']);
  });
});

it('summary: the layer table with the kernel of each conv; --json', () => {
  const r = run(['summary', '--json']);
  expect(r.status).toBe(0);
  const s = JSON.parse(r.stdout) as { totalParams: number; rows: { name: string; kernel?: string }[] };
  expect(s.totalParams).toBe(6994392);
  expect(s.rows.find((x) => x.name === 'conv2')!.kernel).toBe('winograd4');
  expect(s.rows.find((x) => x.name === 'inception3a.branch1')!.kernel).toBe('gemm');
  const text = run(['summary', '--variant', 'torchvision', '--num-classes', '10']);
  expect(text.stdout).toMatch(/^Layer +Type +Output shape +Params +MACs +Kernel$/m);
  expect(text.stdout).toMatch(/^conv3 +BasicConv2d +\[1, 192, 56, 56\] +111,360 +346,816,512 +winograd4$/m);
});

it('bench from the installed bin: one JSON document, a run per thread count, in child processes', () => {
  const r = run(['bench', '--model', 'conv:16,16,3,1,1,32,32', '--threads', '1,2', '--quick', '--json']);
  expect(r.status, r.stderr).toBe(0);
  const doc = JSON.parse(r.stdout) as { results: { threads: number; msPerImage: { median: number }; gflops: number }[] };
  expect(doc.results.map((x) => x.threads)).toEqual([1, 2]);
  for (const x of doc.results) expect(x.msPerImage.median).toBeGreaterThan(0);
});

it('info: version, SIMD, threads, memory, the .wasm in use', () => {
  const r = run(['info', '--json']);
  expect(r.status).toBe(0);
  const info = JSON.parse(r.stdout) as { version: string; simd: { chosen: string }; threads: { running: number }; wasm: { inference: { file: string; bytes: number } } };
  expect(info.version).toBe((JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version: string }).version);
  expect(info.simd.chosen).toBe('simd128');
  expect(info.wasm.inference.file).toContain(path.join(work, 'node_modules/inception-wasm/dist/wasm'));
  expect(info.wasm.inference.bytes).toBeGreaterThan(100_000);
});
