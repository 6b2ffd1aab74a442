/**
 * Entry point of the sandbox Kroger authorization server, run in its own process because
 * oidc-provider is ESM-only: `node --import tsx infra/local/sandbox/server.mts` (or use launch.ts).
 *
 * Environment: SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_REDIRECT_URIS (space separated,
 * matched exactly) are required; SANDBOX_PORT (default 0 = a free port), SANDBOX_HOST (default
 * 127.0.0.1), SANDBOX_ACCESS_TOKEN_TTL (seconds, default 1800) are optional.
 *
 * Once listening it prints exactly one line to stdout, `{"ready":true,"port":N}`; logs go to stderr.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

// oidc-provider prints notices with console.info (stdout); stdout is reserved for the ready line.
// It is imported dynamically below so this runs before any of its modules are evaluated.
console.info = console.error;
console.log = console.error;

interface ServerConfig {
  readonly port: number;
  readonly host: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUris: string[];
  readonly accessTokenTtlSeconds: number;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new Error(`${name} environment variable is not set`);
  return value;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} environment variable must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

/** Reads and checks the whole configuration once, naming the variable that is wrong. */
function readConfig(env: NodeJS.ProcessEnv): ServerConfig {
  const redirectUris = required(env, 'SANDBOX_REDIRECT_URIS').split(/\s+/);
  for (const uri of redirectUris) {
    if (!URL.canParse(uri)) throw new Error(`SANDBOX_REDIRECT_URIS environment variable has an invalid URL "${uri}"`);
  }
  return {
    port: integer(env, 'SANDBOX_PORT', 0, 0, 65535),
    host: env.SANDBOX_HOST?.trim() || '127.0.0.1',
    clientId: required(env, 'SANDBOX_CLIENT_ID'),
    clientSecret: required(env, 'SANDBOX_CLIENT_SECRET'),
    redirectUris,
    accessTokenTtlSeconds: integer(env, 'SANDBOX_ACCESS_TOKEN_TTL', 1800, 1, 86400),
  };
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

async function main(): Promise<void> {
  const config = readConfig(process.env);
  // Listen first: with port 0 the issuer (which names the port) is only known afterwards.
  const server = createServer();
  const port = await listen(server, config.port, config.host);
  const { createSandbox, log } = await import('./provider.mjs');
  server.on('request', createSandbox({ ...config, issuer: `http://localhost:${port}` }));

  const shutdown = (): void => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  // launch.ts keeps our stdin open; when its process dies, stdin ends and the sandbox goes with it.
  if (process.env.SANDBOX_EXIT_ON_STDIN_END === '1') process.stdin.on('end', shutdown).resume();

  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);
  log(`listening on http://${config.host}:${port} as http://localhost:${port}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`[sandbox] failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
