import { createReadStream, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import { streamRunEvents } from './events.js';
import { fileInside, resolveDecodedInside } from './paths.js';
import { findSavedModels, isRunDir, listRuns, runDetail } from './runs.js';

export interface ServeOptions {
  /** The folder of run directories to show. */
  runsDir: string;
  /** Default 127.0.0.1 (only this machine). */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** The built pages and scripts (default: the package's dist/web). */
  webDir?: string;
}

export interface DashboardServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.wasm': 'application/wasm',
};

/** Pages are same-origin scripts only; wasm needs 'wasm-unsafe-eval'. */
const PAGE_CSP =
  "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
/** Files from run folders are data: an SVG opened directly must not run scripts in the dashboard's origin. */
const DATA_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox";

const PAGES: Record<string, string> = { '/': 'app.html', '/compare': 'app.html', '/playground': 'playground.html', '/handwriting': 'handwriting.html' };

/** The package's built web assets: dist/web next to this module, or the checkout's dist/web (tests run from dist-test). */
export function defaultWebDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  const here = join(dir, '..', 'web');
  if (existsSync(join(here, 'app.html'))) return here;
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dist', 'web');
    dir = dirname(dir);
  }
  return here;
}

/** Names of the regular files directly in `dir` (the only asset names the server answers to). */
function listFiles(dir: string): Set<string> {
  try {
    return new Set(readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name));
  } catch {
    return new Set();
  }
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * `efftrain serve`: a read-only dashboard over a folder of run directories (node:http, no dependencies at run
 * time). Serves the pages and their bundled scripts, a JSON API, server-sent events for live runs, and files under
 * `/runs/…` from inside the folder only (realpath containment; anything else is 404). GET and HEAD only.
 */
export async function startDashboard(o: ServeOptions): Promise<DashboardServer> {
  if (!existsSync(o.runsDir) || !statSync(o.runsDir).isDirectory()) throw new UserError(`serve: ${o.runsDir} is not a directory (give the folder that holds your run directories, e.g. runs/)`);
  const root = realpathSync(o.runsDir);
  const webDir = o.webDir ?? defaultWebDir();
  const assets = listFiles(webDir);
  if (!assets.has('app.html')) throw new Error(`serve: the dashboard's pages are missing from ${webDir}; build them with npm run build`);
  const wasm = listFiles(join(webDir, 'wasm'));
  const host = o.host ?? '127.0.0.1';
  const loopbackOnly = LOOPBACK.has(host);

  const sendFile = (req: IncomingMessage, res: ServerResponse, path: string, csp: string, extraHeaders: Record<string, string> = {}) => {
    const type = MIME[extname(path).toLowerCase()] ?? 'application/octet-stream';
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': statSync(path).size, 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': csp, 'Cache-Control': 'no-cache', ...extraHeaders });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(path).on('error', () => res.destroy()).pipe(res);
  };
  const json = (res: ServerResponse, body: unknown) => {
    const s = JSON.stringify(body);
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    res.end(s);
  };
  const fail = (res: ServerResponse, code: number, message: string) => {
    if (res.headersSent) return void res.destroy();
    res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end(message + '\n');
  };
  const runDirOf = (id: string | null) => {
    if (!id) return null;
    const dir = resolveDecodedInside(root, id);
    return dir && dir !== root && statSync(dir).isDirectory() && isRunDir(dir) ? dir : null;
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(res, 405, 'read-only: GET and HEAD only');
    // Bound to loopback, answer only loopback names: a page elsewhere cannot reach us through DNS rebinding.
    const hostName = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (loopbackOnly && !LOOPBACK.has(hostName)) return fail(res, 403, 'unexpected Host header');
    const raw = req.url ?? '/';
    if (!raw.startsWith('/')) return fail(res, 400, 'bad request');
    const q = raw.indexOf('?');
    const rawPath = q < 0 ? raw : raw.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));

    if (PAGES[rawPath] || rawPath.startsWith('/run/')) {
      const page = PAGES[rawPath] ?? 'app.html';
      if (!assets.has(page)) return fail(res, 404, 'not found');
      return sendFile(req, res, join(webDir, page), PAGE_CSP);
    }
    if (rawPath.startsWith('/assets/')) {
      const name = rawPath.slice('/assets/'.length);
      return assets.has(name) ? sendFile(req, res, join(webDir, name), PAGE_CSP) : fail(res, 404, 'not found');
    }
    if (rawPath.startsWith('/wasm/')) {
      const name = rawPath.slice('/wasm/'.length);
      return wasm.has(name) ? sendFile(req, res, join(webDir, 'wasm', name), PAGE_CSP) : fail(res, 404, 'not found');
    }
    if (rawPath === '/api/runs') return json(res, listRuns(root));
    if (rawPath === '/api/recognizers') return json(res, findSavedModels(root, 'recognizer.json'));
    if (rawPath === '/api/run') {
      const dir = runDirOf(params.get('id'));
      return dir ? json(res, runDetail(root, dir)) : fail(res, 404, 'no such run');
    }
    if (rawPath === '/api/events') {
      const dir = runDirOf(params.get('id'));
      if (!dir) return fail(res, 404, 'no such run');
      const last = Number(req.headers['last-event-id'] ?? params.get('from') ?? 0);
      return streamRunEvents(req, res, dir, Number.isFinite(last) ? last : 0);
    }
    if (rawPath.startsWith('/runs/')) {
      const file = fileInside(root, rawPath.slice('/runs/'.length));
      return file ? sendFile(req, res, file, DATA_CSP) : fail(res, 404, 'not found');
    }
    return fail(res, 404, 'not found');
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      // One bad request (a file vanishing mid-read, a permission error) never takes the server down.
      fail(res, 500, `internal error: ${(e as Error).message}`);
    }
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? new UserError(`serve: port ${o.port} is in use; choose another with --port`) : e),
    );
    server.listen(o.port ?? 8080, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shownHost}:${addr.port}`,
    server,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
