#!/usr/bin/env node
// A dependency-free static server for the example: this folder at /examples/browser/ and
// the repository's dist/ at /dist/ (the page imports ../../dist/index.js), on 127.0.0.1.
//
//   node examples/browser/serve.mjs [port]     default 8080; 0 picks a free port
//
// Prints the page's URL. Any static server rooted at the repository works the same way.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const roots = { '/examples/browser/': here, '/dist/': path.join(repo, 'dist') };
const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.md': 'text/markdown; charset=utf-8',
  '.wasm': 'application/wasm', // what WebAssembly.instantiateStreaming requires
};

if (!existsSync(path.join(repo, 'dist', 'index.js'))) {
  console.error('dist/index.js is missing: run `npm run build` at the repository root first.');
  process.exit(1);
}

/** The file a URL path names, or undefined: only inside the two roots, never above them. */
function fileFor(pathname) {
  for (const [prefix, dir] of Object.entries(roots)) {
    if (!pathname.startsWith(prefix)) continue;
    const file = path.resolve(dir, `.${pathname.slice(prefix.length - 1)}`);
    if (file !== dir && !file.startsWith(dir + path.sep)) return undefined;
    return pathname.endsWith('/') ? path.join(file, 'index.html') : file;
  }
  return undefined;
}

const server = createServer(async (req, res) => {
  let pathname;
  try {
    pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
  } catch {
    res.writeHead(400).end();
    return;
  }
  if (pathname === '/' || pathname === '/examples/browser') {
    res.writeHead(302, { location: '/examples/browser/' }).end();
    return;
  }
  const file = fileFor(pathname);
  const body = file && (await readFile(file).catch(() => undefined));
  if (req.method !== 'GET' && req.method !== 'HEAD') res.writeHead(405).end();
  else if (!body) res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${pathname}\n`);
  else {
    const type = types[path.extname(file)] ?? 'application/octet-stream';
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
});

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
server.listen(port, '127.0.0.1', () => {
  console.log(`http://127.0.0.1:${server.address().port}/examples/browser/`);
});
