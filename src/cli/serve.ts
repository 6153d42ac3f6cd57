import { InvalidArgumentError, type Command } from 'commander';

function portArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('--port must be an integer in 0..65535 (0 = any free port)');
  return n;
}

/** `efftrain serve [runsDir]`: the read-only run dashboard, live curves, /playground and /handwriting. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('read-only web dashboard over a folder of run directories (live curves, seed bands, paired differences, compare), plus /playground')
    .argument('[runsDir]', 'folder holding run directories', 'runs')
    .option('--port <n>', 'port (0 = any free port)', portArg, 8080)
    .option('--host <addr>', 'address to bind; the default serves this machine only, another address exposes the dashboard deliberately', '127.0.0.1')
    .action(async (runsDir: string, o: { port: number; host: string }) => {
      const { startDashboard } = await import('../serve/server.js');
      const d = await startDashboard({ runsDir, port: o.port, host: o.host });
      process.stdout.write(`${d.url}/\n`);
      process.stderr.write(`efftrain: serving ${runsDir} read-only at ${d.url}/ (playground: ${d.url}/playground); Ctrl-C stops\n`);
      await new Promise<void>((resolve) => {
        const stop = () => void d.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
