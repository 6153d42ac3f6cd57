import { UserError } from '../errors.js';

/**
 * Imports a sweep module. `bullmq` and `ioredis` are optional peer dependencies (the library does not need a job
 * queue), so a user who installed efftrain alone gets the install line instead of a module-resolution trace.
 */
export async function loadQueueModule<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && /'(bullmq|ioredis)'/.test(err.message)) {
      throw new UserError(`efftrain sweep and worker need the optional packages bullmq and ioredis: npm install bullmq@${QUEUE_PEERS.bullmq} ioredis@${QUEUE_PEERS.ioredis}`);
    }
    throw e;
  }
}

/** The peer ranges of package.json, for the install hint. */
const QUEUE_PEERS = { bullmq: '^6.7.0', ioredis: '^6.0.0' } as const;
