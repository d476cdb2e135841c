/**
 * A tiny static HTTP server on 127.0.0.1 (random free port) for the browser test: the
 * built package under /dist/, the test page at / and /page.js, and in-memory files
 * (the fixture requests) under their own paths. `isolated` adds the two headers that make
 * a page cross-origin isolated (what a threaded build will need); `fallback` answers
 * unknown paths with a page; every request is logged.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.safetensors': 'application/octet-stream',
  '.jpg': 'image/jpeg',
};

export interface StaticServer {
  origin: string;
  /** `METHOD path status content-type`, in order. */
  log: string[];
  close(): Promise<void>;
}

export async function startStaticServer(options: {
  /** URL prefix → directory (files are served only from inside it). */
  dirs: Record<string, string>;
  /** exact path → file on disk or bytes in memory */
  files: Record<string, string | Uint8Array>;
  isolated: boolean;
  /** A file (HTML) answered with 200 for every path not found, as single-page-app hosts and dev servers do. */
  fallback?: string;
}): Promise<StaticServer> {
  const log: string[] = [];
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const pathname = decodeURIComponent(url.pathname);
    const headers: Record<string, string> = { 'cache-control': 'no-store' };
    if (options.isolated) {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
    }
    let body: Uint8Array | undefined;
    const entry = options.files[pathname];
    try {
      if (entry !== undefined) {
        body = typeof entry === 'string' ? await readFile(entry) : entry;
      } else {
        for (const [prefix, dir] of Object.entries(options.dirs)) {
          if (!pathname.startsWith(prefix)) continue;
          const file = path.resolve(dir, `.${pathname.slice(prefix.length - 1)}`);
          if (file.startsWith(path.resolve(dir) + path.sep)) body = await readFile(file);
          break;
        }
      }
    } catch {
      body = undefined;
    }
    const fallback = body === undefined && options.fallback !== undefined;
    if (fallback) body = await readFile(options.fallback!);
    const type = fallback ? TYPES['.html']! : TYPES[path.extname(typeof entry === 'string' ? entry : pathname)] ?? 'application/octet-stream';
    const status = req.method !== 'GET' ? 405 : body ? 200 : 404;
    log.push(`${req.method} ${pathname} ${status} ${status === 200 ? type : '-'}`);
    if (status !== 200) {
      res.writeHead(status, headers).end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': type, 'content-length': String(body!.length) }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    log,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
