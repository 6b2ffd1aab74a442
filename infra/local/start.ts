/**
 * `npm start`: runs the broker locally and prints the login URL. With no configuration it brings
 * its own DynamoDB Local and sandbox provider; set `OAUTH2_BASE_URL` (and `CLIENT_ID`,
 * `CLIENT_SECRET`) to use a real provider such as Kroger, `DYNAMODB_ENDPOINT` for another DynamoDB.
 */
// First import: it silences a notice the AWS SDK prints on Node 20 before any SDK client exists.
import '../../functions/adapters/quiet';
import { ConfigError } from '../../functions/core/errors';
import { startLocalStack } from './stack';

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  let stack;
  try {
    stack = await startLocalStack(process.env, { writeStateFile: true, log });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log(`${error instanceof ConfigError ? 'configuration error' : 'could not start'}: ${message}`);
    process.exit(1);
  }
  const provider = stack.sandbox ? `sandbox provider at ${stack.sandbox.origin}` : stack.env.OAUTH2_BASE_URL;
  process.stdout.write(
    [
      '',
      `Kroger token broker running at ${stack.baseUrl}`,
      `  provider:  ${provider}`,
      `  DynamoDB:  ${stack.env.DYNAMODB_ENDPOINT}`,
      `  callback:  ${stack.env.REDIRECT_URL}`,
      '',
      `Open ${stack.loginUrl} to connect a Kroger account.`,
      'Then read its token: npm run tokens -- get <user-id>   (Ctrl+C stops everything)',
      'Another local service reads tokens the production way with: eval "$(npm run --silent tokens -- env)"',
      '',
    ].join('\n') + '\n',
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    log('stopping...');
    stack.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

void main();
