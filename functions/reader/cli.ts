/**
 * `npm run tokens -- <command>`: the operator's view of stored tokens, on the reader library.
 *
 *   get <user-id>          a valid access token (refreshed first when needed), as one JSON object
 *   list                   users, status and expiry (never a token value)
 *   refresh <user-id>      force a refresh now (at most once per FORCE_REFRESH_MIN_INTERVAL_SECONDS)
 *   disconnect <user-id> [--force]   revoke the grant at the provider (RFC 7009), then delete the
 *                          user's tokens; --force deletes without revoking
 *   link <app-user-id> [--return-to URL] [--ttl SECONDS]   a one-time connect link
 *
 * It reads the same configuration as `npm start`; while `npm start` runs, it also finds that
 * stack's DynamoDB Local and sandbox through `.local/stack.json`.
 * Exit codes: 0 ok, 2 usage, 3 unknown user, 4 re-auth required, 5 provider unavailable (for
 * `disconnect`: the revocation failed and the tokens are kept), 1 other.
 */
// First import: it silences a notice the AWS SDK prints on Node 20 before any SDK client exists.
import '../adapters/quiet';
import { existsSync, readFileSync } from 'node:fs';
import type { Env } from '../core/config';
import {
  ArgumentError,
  ProviderUnavailableError,
  ReauthRequiredError,
  RefreshInProgressError,
  UnknownUserError,
} from '../core/errors';
import { createLogger } from '../adapters/logger';
import { disconnectUser } from '../flows/disconnect-flow';
import { createServices, dynamoClient, providerClient, type Services, tokenStore } from '../services';
import { createLoginLink, createTokenReader } from './index';
import { type LocalStackState, localStateFile } from './local-state';

const USAGE = `usage: npm run tokens -- <command>
  get <user-id>                 print a valid access token as JSON (refreshes when needed)
  list                          list users with status and expiry
  refresh <user-id>             force a refresh (at most once a minute per user)
  disconnect <user-id> [--force]   revoke the grant at the provider, then delete the user's tokens
                                (--force: delete without revoking; the grant stays live at the provider)
  link <app-user-id> [--return-to URL] [--ttl SECONDS]   create a one-time connect link`;

/** A malformed command line: an argument error whose message ends with the usage. */
class UsageError extends ArgumentError {}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The environment with the running local stack's settings filled in where the environment says
 * nothing (so `npm run tokens` works beside `npm start` with no configuration).
 */
export function resolveEnv(env: Env, stateFile = localStateFile()): Env {
  if (env.DYNAMODB_ENDPOINT || !existsSync(stateFile)) return env;
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as LocalStackState;
  if (!isAlive(state.pid)) return env;
  const merged: Record<string, string | undefined> = { ...state.env };
  for (const [key, value] of Object.entries(env)) if (value) merged[key] = value;
  return merged;
}

function exitCodeFor(error: unknown): number {
  // A malformed command line, or an argument the library refused (say, a returnTo off the allow-list).
  if (error instanceof ArgumentError) return 2;
  if (error instanceof UnknownUserError) return 3;
  if (error instanceof ReauthRequiredError) return 4;
  if (error instanceof ProviderUnavailableError || error instanceof RefreshInProgressError) return 5;
  return 1;
}

function needArg(args: string[], what: string): string {
  const value = args[0];
  if (!value || value.startsWith('--')) throw new UsageError(`missing ${what}\n${USAGE}`);
  return value;
}

function flag(args: string[], name: string): string | undefined {
  const index = args.indexOf(name);
  if (index < 0) return undefined;
  const value = args[index + 1];
  if (!value) throw new UsageError(`${name} needs a value`);
  return value;
}

/** Runs one command; returns the exit code. Output goes to `out`, messages to `err`. */
export async function runCli(
  argv: string[],
  env: Env,
  io: { out: (line: string) => void; err: (line: string) => void },
): Promise<number> {
  const [command, ...args] = argv;
  const logger = createLogger({ level: env.LOG_LEVEL ?? 'warn', write: io.err });
  let services: Services | undefined;
  try {
    services = createServices(env, { logger });
    const dynamo = dynamoClient(services);
    const tokens = tokenStore(services);
    switch (command) {
      case 'get':
      case 'refresh': {
        const userId = needArg(args, 'user id');
        const reader = createTokenReader({ env, dynamo, logger });
        if (command === 'get') {
          const { accessToken, expiresAt, scope } = await reader.getAccessToken(userId);
          io.out(JSON.stringify({ userId, accessToken, expiresAt, scope }));
          return 0;
        }
        const before = await tokens.getForReader(userId);
        const { accessToken, expiresAt, scope } = await reader.getAccessToken(userId, { forceRefresh: true });
        const refreshed = accessToken !== before?.accessToken;
        if (!refreshed) {
          io.err(
            'not refreshed: the tokens were issued less than FORCE_REFRESH_MIN_INTERVAL_SECONDS ago; the current token is still valid',
          );
        }
        io.out(JSON.stringify({ userId, expiresAt, scope, refreshed }));
        return 0;
      }
      case 'list': {
        for await (const row of tokens.list()) io.out(JSON.stringify(row));
        return 0;
      }
      case 'disconnect': {
        const force = args.includes('--force');
        const userId = needArg(
          args.filter((arg) => arg !== '--force'),
          'user id',
        );
        const outcome = await disconnectUser(
          userId,
          { tokens, client: () => providerClient(services!), logger },
          { force },
        );
        if (outcome === 'forced') {
          io.err('tokens deleted without revoking (--force): the grant is still live at the provider');
        } else if (outcome === 'not-revocable') {
          io.err(
            'no revocation endpoint is configured (OAUTH2_REVOCATION_URL): the tokens are deleted here, but the grant ' +
              "stays live at the provider until it expires or the person removes this app's access in their account",
          );
        }
        io.out(JSON.stringify({ userId, disconnected: true, revoked: outcome === 'revoked' }));
        return 0;
      }
      case 'link': {
        const appUserId = needArg(args, 'app user id');
        const ttl = flag(args, '--ttl');
        if (ttl !== undefined && !/^\d+$/.test(ttl))
          throw new UsageError(`--ttl needs a whole number of seconds, got "${ttl}"`);
        const link = await createLoginLink(appUserId, {
          env,
          dynamo,
          returnTo: flag(args, '--return-to'),
          ttlSeconds: ttl === undefined ? undefined : Number(ttl),
        });
        io.out(JSON.stringify({ appUserId, ...link }));
        return 0;
      }
      default:
        throw new UsageError(command ? `unknown command "${command}"\n${USAGE}` : USAGE);
    }
  } catch (error) {
    let message = (error as Error).message;
    if ((error as Error).name === 'CredentialsProviderError' && !env.DYNAMODB_ENDPOINT) {
      // No local stack found and no AWS credentials: say where the tool looked.
      message =
        'no DynamoDB to read: start the local stack with `npm start` (found through .local/stack.json), ' +
        'set DYNAMODB_ENDPOINT, or configure AWS credentials for the deployed tables';
    }
    io.err(`error: ${message}`);
    return exitCodeFor(error);
  } finally {
    if (services) dynamoClient(services).destroy();
  }
}

if (require.main === module) {
  runCli(process.argv.slice(2), resolveEnv(process.env), {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  }).then((code) => {
    process.exitCode = code;
  });
}
