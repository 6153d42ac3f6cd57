import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { RedisOptions } from 'ioredis';
import { UserError } from '../errors.js';

/**
 * Turns a `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS) URL into ioredis options for BullMQ.
 * `maxRetriesPerRequest: null` (BullMQ requires it: commands wait through an outage instead of failing) and a
 * reconnect every ≤ 1 s, so a restarted Redis is found again within a second. For a private CA set
 * EFFTRAIN_REDIS_CA=<pem file>; EFFTRAIN_REDIS_TLS_INSECURE=1 skips certificate checks (tests only).
 */
export function redisOptions(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`--queue: "${url}" is not a URL; expected redis://HOST:PORT or rediss://HOST:PORT`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new UserError(`--queue: unsupported scheme "${u.protocol}" in ${redactUrl(url)}; use redis:// or rediss:// (TLS)`);
  if (!u.hostname) throw new UserError(`--queue: no host in ${redactUrl(url)}`);
  const db = u.pathname.replace(/^\//, '');
  if (db && !/^\d+$/.test(db)) throw new UserError(`--queue: database "${db}" in ${redactUrl(url)} must be a number`);
  const o: RedisOptions = {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 6379,
    db: db ? Number(db) : 0,
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(200 * times, 1000),
  };
  if (u.username) o.username = decodeURIComponent(u.username);
  if (u.password) o.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') {
    const ca = process.env.EFFTRAIN_REDIS_CA;
    o.tls = { ...(isIP(o.host!) ? {} : { servername: o.host }), ...(ca ? { ca: readFileSync(ca) } : {}), ...(process.env.EFFTRAIN_REDIS_TLS_INSECURE === '1' ? { rejectUnauthorized: false } : {}) };
  }
  return o;
}

/** The URL with its password replaced by `***`, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

/**
 * Opens an ioredis client and waits until Redis answers, failing with a clear message (unreachable host, a
 * password needed or wrong) after `timeoutMs` instead of waiting forever. Later outages are retried quietly.
 */
export async function connectRedis(url: string, timeoutMs = 10_000): Promise<import('ioredis').Redis> {
  const { Redis } = await import('ioredis');
  const client = new Redis({ ...redisOptions(url), lazyConnect: true });
  let lastError: Error | null = null;
  client.on('error', (e: Error) => (lastError = e));
  const timeout = new Promise<never>((_, rej) =>
    setTimeout(() => rej(new Error('timeout')), timeoutMs).unref(),
  );
  try {
    await Promise.race([client.connect().then(() => client.ping()), timeout]);
  } catch (e) {
    client.disconnect();
    const why = (lastError as Error | null)?.message ?? (e as Error).message;
    const hint = /NOAUTH|WRONGPASS|invalid password|AUTH/i.test(why)
      ? 'give the password in the URL: redis://:PASSWORD@HOST:PORT'
      : /certificate|SSL|TLS/i.test(why)
        ? 'for a private CA set EFFTRAIN_REDIS_CA=<ca.pem>'
        : 'is redis-server running there and reachable?';
    throw new UserError(`cannot connect to Redis at ${redactUrl(url)}: ${why} (${hint})`);
  }
  return client;
}

/** redisOptions() typed for BullMQ's `connection` option. */
export const bullConnection = (url: string) => redisOptions(url) as import('bullmq').ConnectionOptions;
