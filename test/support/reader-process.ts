/**
 * One reader in its own process, for the cross-process single-flight test: it prints "ready", waits
 * for a line on stdin so all readers start together, reads a token through the reader library and
 * prints the result as JSON.
 */
import '../../functions/adapters/quiet';
import { createInterface } from 'node:readline';
import { createTokenReader } from '../../functions/reader/index';

const userId = process.argv[2];
const reader = createTokenReader();
process.stdout.write('ready\n');
createInterface({ input: process.stdin }).once('line', () => {
  reader.getAccessToken(userId).then(
    (token) => {
      process.stdout.write(
        `${JSON.stringify({ ok: true, accessToken: token.accessToken, expiresAt: token.expiresAt })}\n`,
      );
      process.exit(0);
    },
    (error: Error & { code?: string }) => {
      process.stdout.write(`${JSON.stringify({ ok: false, code: error.code, message: error.message })}\n`);
      process.exit(1);
    },
  );
});
