/**
 * `npm run tokens -- [--stack NAME [--region REGION]] <command>`: the operator's view of stored
 * tokens, on the reader library.
 *
 *   get <user-id>          a valid access token (refreshed first when needed), as one JSON object
 *   list                   users, status and expiry (never a token value)
 *   refresh <user-id>      force a refresh now (at most once per FORCE_REFRESH_MIN_INTERVAL_SECONDS)
 *   disconnect <user-id> [--force]   revoke the grant at the provider (RFC 7009), then delete the
 *                          user's tokens; --force deletes without revoking
 *   link <app-user-id> [--return-to URL] [--ttl SECONDS]   a one-time connect link
 *   complete <connect-code> <app-user-id>   complete a link's connection for that app user
 *   env                    `export KEY=value` lines for another local service's reader (production
 *                          path against the running `npm start`; never the secret or provider settings)
 *
 * Where the tokens are comes from one of three places, and from nowhere else: a deployed stack's
 * outputs (`--stack`), explicit variables (`DYNAMODB_ENDPOINT`, `TOKENS_TABLE`, `SESSIONS_TABLE`),
 * or the running local stack (`npm start`, found through `.local/stack.json`). Without any of them
 * it refuses (exit 2) rather than read default table names in whatever AWS account the shell has.
 * Exit codes: 0 ok, 2 usage (a malformed connect code too), 3 unknown user, 4 re-auth required,
 * 5 temporarily unavailable, nothing lost, try again: a throttled, slow, failing or unreachable
 * dependency (DynamoDB, KMS, Secrets Manager, the refresh function, Kroger; the message names it) or a
 * refresh in progress elsewhere (for `disconnect`: the revocation failed and the tokens are kept),
 * 6 connect code refused (unknown, used, expired, cancelled, or another app user's), 1 other (`env`
 * without a running local stack is 1).
 */
// First import: it silences a notice the AWS SDK prints on Node 20 before any SDK client exists.
import '../adapters/quiet';
import { existsSync, readFileSync } from 'node:fs';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Env } from '../core/config';
import {
  ArgumentError,
  BrokerError,
  ConnectionRefusedError,
  DEPENDENCIES,
  DependencyUnavailableError,
  ReauthRequiredError,
  UnknownUserError,
} from '../core/errors';
import { createLogger } from '../adapters/logger';
import { disconnectUser } from '../flows/disconnect-flow';
import { createServices, dynamoClient, providerClient, providerConfig, type Services, tokenStore } from '../services';
import { completeConnection } from './connect';
import { envFromStack } from './deployed-stack';
import { kmsKeyProviderOnDemand } from './kms-on-demand';
import { createLoginLink, createTokenReader } from './index';
import { type LocalStackState, localStateFile } from './local-state';

const USAGE = `usage: npm run tokens -- [--stack NAME [--region REGION]] <command>
  get <user-id>                 print a valid access token as JSON (refreshes when needed)
  list                          list users with status and expiry
  refresh <user-id>             force a refresh (at most once a minute per user)
  disconnect <user-id> [--force]   revoke the grant at the provider, then delete the user's tokens
                                (--force: delete without revoking; the grant stays live at the provider)
  link <app-user-id> [--return-to URL] [--ttl SECONDS]   create a one-time connect link
  complete <connect-code> <app-user-id>   complete a connect link's sign-in for that app user
  env                           print the settings another local service's reader needs:
                                eval "$(npm run --silent tokens -- env)"
  --stack NAME                  a deployed broker stack: its tables and refresh function, from its outputs
  --region REGION               the region of that stack (default: your AWS configuration's)`;

/** Variables that name where the tokens are: setting one is choosing a target explicitly. */
const TARGET_VARIABLES = ['DYNAMODB_ENDPOINT', 'TOKENS_TABLE', 'SESSIONS_TABLE'] as const;

/** Why the CLI refuses to guess, and the three ways to tell it. */
const NO_TARGET = `no broker to talk to; tell the tokens CLI where the tokens are, one of:
  --stack NAME [--region REGION]   a deployed stack (reads its CloudFormation outputs)
  DYNAMODB_ENDPOINT, or TOKENS_TABLE and SESSIONS_TABLE   explicit variables
  npm start                        a running local stack, found through .local/stack.json
(it does not fall back to default table names in whatever AWS account your shell has)`;

/** A malformed command line: an argument error whose message ends with the usage. */
class UsageError extends ArgumentError {
  override readonly name: string = 'UsageError';
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The state of the local stack running in this directory, if one is. */
function runningLocalStack(stateFile: string): LocalStackState | undefined {
  if (!existsSync(stateFile)) return undefined;
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as LocalStackState;
  return isAlive(state.pid) ? state : undefined;
}

/**
 * The environment with the running local stack's settings filled in where the environment says
 * nothing (so `npm run tokens` works beside `npm start` with no configuration).
 */
export function resolveEnv(env: Env, stateFile = localStateFile()): Env {
  if (env.DYNAMODB_ENDPOINT) return env;
  const state = runningLocalStack(stateFile);
  if (!state) return env;
  const merged: Record<string, string | undefined> = { ...state.env };
  for (const [key, value] of Object.entries(env)) if (value) merged[key] = value;
  return merged;
}

/** A value as a POSIX shell word: bare when that is safe, else single-quoted. */
export function shellWord(value: string): string {
  return /^[A-Za-z0-9_./:@%+,=-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * `env`: the running local stack's settings for another local service's reader, as `export` lines
 * for `eval`. Only what the stack put in its state for readers (see `LocalStack.readerEnv`).
 */
function printReaderEnv(stateFile: string, io: { out: (line: string) => void; err: (line: string) => void }): number {
  const state = runningLocalStack(stateFile);
  if (!state?.reader) {
    io.err(
      state
        ? 'error: the running local stack is older than `tokens env`: restart it (Ctrl+C, then npm start)'
        : 'error: no local stack is running in this directory: start it with `npm start`, then run `npm run --silent tokens -- env` again',
    );
    return 1;
  }
  for (const [name, value] of Object.entries(state.reader)) io.out(`export ${name}=${shellWord(value)}`);
  return 0;
}

/**
 * Whether `error` is a temporary unavailability (exit 5: nothing lost, try again): a dependency that
 * was throttled, slow, failing or unreachable (the store, the field key, the secret, the broker's
 * function, Kroger), or a refresh in progress elsewhere.
 */
function isTemporary(error: unknown): error is BrokerError {
  return error instanceof BrokerError && error.retryable;
}

function exitCodeFor(error: unknown): number {
  // A malformed command line, or an argument the library refused (say, a returnTo off the allow-list).
  if (error instanceof ArgumentError) return 2;
  if (error instanceof UnknownUserError) return 3;
  if (error instanceof ReauthRequiredError) return 4;
  if (isTemporary(error)) return 5;
  if (error instanceof ConnectionRefusedError) return 6;
  return 1;
}

/** The line for a temporary unavailability: which dependency, that nothing was lost, when to try again. */
function temporaryMessage(error: BrokerError): string {
  const who = error instanceof DependencyUnavailableError ? DEPENDENCIES[error.dependency] : undefined;
  const when = error.retryAfterSeconds === undefined ? 'shortly' : `in ${error.retryAfterSeconds} s`;
  return `${who ? `${who} is unavailable: ` : ''}${error.message}. Nothing was lost: try again ${when} (${error.code})`;
}

function needArg(args: string[], what: string): string {
  const value = args[0];
  if (!value || value.startsWith('--')) throw new UsageError(`missing ${what}\n${USAGE}`);
  return value;
}

/** Takes `--stack NAME` and `--region REGION` out of `argv`, wherever they are. */
function globalFlags(argv: string[]): { rest: string[]; stack?: string; region?: string } {
  const rest = [...argv];
  const take = (name: string): string | undefined => {
    const index = rest.indexOf(name);
    if (index < 0) return undefined;
    const value = rest[index + 1];
    if (!value || value.startsWith('--')) throw new UsageError(`${name} needs a value\n${USAGE}`);
    rest.splice(index, 2);
    return value;
  };
  return { stack: take('--stack'), region: take('--region'), rest };
}

/**
 * The environment to run with: a stack's outputs for `--stack`; else `env` as given, when it names
 * a target (explicit variables, or the local stack's, merged in by {@link resolveEnv}).
 * @throws {UsageError} no target at all: nothing is read from AWS
 */
async function targetEnv(env: Env, stack: string | undefined, region: string | undefined): Promise<Env> {
  if (stack) return envFromStack({ stackName: stack, region: region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION }, env);
  if (!TARGET_VARIABLES.some((name) => env[name]?.trim())) throw new UsageError(NO_TARGET);
  return region ? { ...env, AWS_REGION: region } : env;
}

function flag(args: string[], name: string): string | undefined {
  const index = args.indexOf(name);
  if (index < 0) return undefined;
  const value = args[index + 1];
  if (!value) throw new UsageError(`${name} needs a value`);
  return value;
}

/** Options of {@link runCli}. */
export interface CliOptions {
  /** @default a client for the target's endpoint and region, destroyed when the command ends */
  readonly dynamo?: DynamoDBClient;
  /** The local stack's state file (`env`). @default `.local/stack.json` under the working directory */
  readonly stateFile?: string;
}

/** Runs one command; returns the exit code. Output goes to `out`, messages to `err`. */
export async function runCli(
  argv: string[],
  givenEnv: Env,
  io: { out: (line: string) => void; err: (line: string) => void },
  options: CliOptions = {},
): Promise<number> {
  const logger = createLogger({ level: givenEnv.LOG_LEVEL ?? 'warn', write: io.err });
  let env = givenEnv;
  let stack: string | undefined;
  let services: Services | undefined;
  try {
    const flags = globalFlags(argv);
    stack = flags.stack;
    const [command, ...args] = flags.rest;
    if (!command) throw new UsageError(USAGE);
    if (command === 'env') {
      // Reads the local stack's state file only, and prints nothing but the lines.
      if (args.length || flags.stack || flags.region) throw new UsageError(`env takes no arguments\n${USAGE}`);
      return printReaderEnv(options.stateFile ?? localStateFile(), io);
    }
    env = await targetEnv(givenEnv, flags.stack, flags.region);
    services = createServices(env, { logger, dynamo: options.dynamo, kmsKeyProvider: kmsKeyProviderOnDemand });
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
        const built = services;
        // The deployed CLI holds no client secret (revocation needs client authentication); and
        // without a revocation endpoint (Kroger documents none) there is nothing to call.
        const revoker = () =>
          !stack && providerConfig(built).revocationUrl !== undefined ? providerClient(built) : undefined;
        const outcome = await disconnectUser(userId, { tokens, revoker, logger }, { force });
        if (outcome === 'forced') {
          io.err('tokens deleted without revoking (--force): the grant is still live at the provider');
        } else if (outcome === 'not-revocable') {
          io.err(
            `tokens deleted; the grant was not revoked at the provider: ${
              stack
                ? 'the deployed CLI holds no client secret'
                : 'no revocation endpoint is configured (OAUTH2_REVOCATION_URL)'
            }. It stays live at the provider until it expires or the person removes this app's access in their account (docs/operations.md, "Disconnect and revoke")`,
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
      case 'complete': {
        const connectCode = needArg(args, 'connect code');
        const appUserId = needArg(args.slice(1), 'app user id');
        if (args.length > 2) throw new UsageError(`too many arguments\n${USAGE}`);
        io.out(JSON.stringify(await completeConnection(connectCode, appUserId, { env, dynamo, logger })));
        return 0;
      }
      default:
        throw new UsageError(command ? `unknown command "${command}"\n${USAGE}` : USAGE);
    }
  } catch (error) {
    let message = isTemporary(error) ? temporaryMessage(error) : (error as Error).message;
    if ((error as Error).name === 'CredentialsProviderError' && (stack || !env.DYNAMODB_ENDPOINT)) {
      // A deployed target and no AWS credentials: say what is missing and for what.
      message =
        `no AWS credentials for ${stack ? `stack "${stack}"` : 'the deployed tables'}: configure them ` +
        '(aws configure, AWS_PROFILE; see docs/operations.md for the IAM each command needs), ' +
        'or use the local stack (`npm start`)';
    }
    io.err(`error: ${message}`);
    return exitCodeFor(error);
  } finally {
    // A client passed in belongs to the caller.
    if (services && !options.dynamo) dynamoClient(services).destroy();
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
