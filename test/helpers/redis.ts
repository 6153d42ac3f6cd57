import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tempDir } from './tmp.js';

export const REDIS_SERVER = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p)) ?? null;

const canConnect = (port: number) =>
  new Promise<boolean>((res) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), res(true)));
    s.once('error', () => res(false));
  });

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export interface TestRedis {
  url: string;
  port: number;
  dir: string;
  /** Stops the server (SIGTERM); without persistence its data is gone. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Runs redis-cli against it. */
  cli(...args: string[]): string;
}

/**
 * A real redis-server on a free loopback port with its own temp dir (AOF on or off, optional password),
 * started by the test and stopped by `stop()` (and when the test process exits).
 */
export async function startRedis(opts: { persist: boolean; password?: string; tls?: { cert: string; key: string } }): Promise<TestRedis> {
  if (!REDIS_SERVER) throw new Error('redis-server not installed (apt-get install redis-server)');
  const port = await freePort();
  const dir = tempDir('efftrain-redis-');
  let proc: ChildProcess | null = null;
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', opts.persist ? 'yes' : 'no', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', ...(opts.password ? ['--requirepass', opts.password] : [])];
  // With TLS, the plain port is off and the TLS port takes its place; redis-cli below then cannot ping, so TLS
  // servers are probed with a TCP connect instead.
  if (opts.tls) args.splice(0, 2, '--port', '0', '--tls-port', String(port), '--tls-cert-file', opts.tls.cert, '--tls-key-file', opts.tls.key, '--tls-ca-cert-file', opts.tls.cert, '--tls-auth-clients', 'no');
  const auth = opts.password ? ['-a', opts.password, '--no-auth-warning'] : [];
  const cli = (...a: string[]) => spawnSync('redis-cli', ['-p', String(port), ...auth, ...a], { encoding: 'utf8' }).stdout.trim();
  const r: TestRedis = {
    url: `${opts.tls ? 'rediss' : 'redis'}://${opts.password ? `:${encodeURIComponent(opts.password)}@` : ''}127.0.0.1:${port}`,
    port,
    dir,
    cli,
    async start() {
      proc = spawn(REDIS_SERVER!, args, { stdio: 'ignore' });
      for (let i = 0; i < 100; i++) {
        if (opts.tls ? await canConnect(port) : cli('ping') === 'PONG') return;
        await new Promise((res) => setTimeout(res, 50));
      }
      throw new Error(`redis-server on port ${port} did not start`);
    },
    async stop() {
      const p = proc;
      proc = null;
      if (!p || p.exitCode !== null) return;
      const exited = new Promise((res) => p.once('exit', res));
      p.kill('SIGTERM');
      await exited;
    },
  };
  process.on('exit', () => proc?.kill('SIGKILL'));
  await r.start();
  return r;
}
