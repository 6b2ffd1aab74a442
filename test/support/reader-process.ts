/**
 * A reader in its own process, for the cross-process tests. It prints "ready", waits for a line on
 * stdin so that all readers start together, then:
 * - `reader-process.ts <user>`: reads a token through the reader library and prints the result as JSON;
 * - `reader-process.ts <user> hold-lease <ms>`: takes the user's refresh lease as a refresher would,
 *   prints "held" and hangs until it is killed (a process that dies mid-refresh).
 */
import '../../functions/adapters/quiet';
import { createInterface } from 'node:readline';
import { createTokenReader } from '../../functions/reader/index';
import { createServices, tokenStore } from '../../functions/services';

const [userId, mode, leaseMs] = process.argv.slice(2);

async function holdLease(): Promise<void> {
  const store = tokenStore(createServices(process.env));
  await store.acquireLease(userId, `dying-process-${process.pid}`, Date.now(), Number(leaseMs));
  process.stdout.write('held\n');
  setInterval(() => undefined, 60_000); // never finishes the refresh; killed by the test
}

async function read(): Promise<void> {
  try {
    const token = await createTokenReader().getAccessToken(userId);
    process.stdout.write(
      `${JSON.stringify({ ok: true, accessToken: token.accessToken, expiresAt: token.expiresAt })}\n`,
    );
    process.exit(0);
  } catch (error) {
    const { code, message } = error as Error & { code?: string };
    process.stdout.write(`${JSON.stringify({ ok: false, code, message })}\n`);
    process.exit(1);
  }
}

process.stdout.write('ready\n');
createInterface({ input: process.stdin }).once('line', () => {
  void (mode === 'hold-lease' ? holdLease() : read());
});
