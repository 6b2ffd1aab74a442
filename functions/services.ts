/**
 * The composition root: the broker's services, built from one explicit environment. Every Lambda
 * entry, the local stack, the reader library and the CLI get their stores, provider client, events
 * and logger here instead of wiring them by hand.
 *
 * Each service is a separate function of a {@link Services} object and is built on first use, once:
 * a bundle contains only the services its entry asks for (esbuild drops the rest, with the SDK clients
 * they would import), and an entry that asks at init fails at init when its configuration is bad.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  type Env,
  type ProviderConfig,
  readFieldKeyConfig,
  readLogLevel,
  readPlaintextFieldPolicy,
  readProviderConfig,
  readRefreshLimits,
  readRefreshPolicy,
  readSecretConfig,
  readStoreConfig,
  type StoreConfig,
} from './core/config';
import type { PlaintextFieldPolicy } from './core/schema';
import type { RefreshPolicy } from './core/tokens';
import { createDynamoClient } from './adapters/dynamo';
import { createEventPublisher } from './adapters/event-bus';
import type { EventPublisher } from './adapters/events';
import { createFieldCipher, type FieldCipher, lazyFieldCipher } from './adapters/field-cipher';
import { createFieldKeyProvider, type KmsKeyProviderFactory } from './adapters/field-key';
import { createLogger, type Logger } from './adapters/logger';
import { createProviderClient, type ProviderClient } from './adapters/provider';
import { DynamoRefusalCounter, type RefusalCounter } from './adapters/refusal-counter';
import { createSecretSource, type SecretSource } from './adapters/secret';
import { DynamoSessionStore, type SessionStore } from './adapters/session-store';
import { DynamoTokenStore, type TokenStore } from './adapters/token-store';
import { createTokenRefresher, type TokenRefresher } from './flows/single-flight-refresh';

/** One process's services, built from `env`. */
export interface Services {
  /** The environment everything here was configured from (never `process.env` implicitly). */
  readonly env: Env;
  readonly logger: Logger;
  /** Table names, endpoint and region, read (and checked) when the services were created. */
  readonly storeConfig: StoreConfig;
  /**
   * Makes the KMS provider when `FIELD_KEY_ARN` is set: given by the caller, so this module never
   * imports the KMS client (see adapters/field-key.ts).
   */
  readonly kmsKeyProvider?: KmsKeyProviderFactory;
  /** Returns the value built by `make` under `key`, building it on the first call only. */
  once<T>(key: string, make: () => T): T;
}

/** Options of {@link createServices}. */
export interface ServicesOptions {
  /** @default a JSON logger at `LOG_LEVEL`, tagged with the service and the Lambda function name */
  readonly logger?: Logger;
  /** @default a client for the configured endpoint and region, created on first use */
  readonly dynamo?: DynamoDBClient;
  /**
   * Makes the KMS provider for `FIELD_KEY_ARN`.
   * @default none: a KMS key setting then fails where a field is encrypted or decrypted
   */
  readonly kmsKeyProvider?: KmsKeyProviderFactory;
}

/**
 * Creates the services of one process from `env`.
 * @throws {ConfigError} a malformed store setting or `LOG_LEVEL`, naming the variable
 */
export function createServices(env: Env, options: ServicesOptions = {}): Services {
  const storeConfig = readStoreConfig(env);
  const logger =
    options.logger ??
    createLogger({
      level: readLogLevel(env),
      base: { service: 'kroger-token-broker', function: env.AWS_LAMBDA_FUNCTION_NAME ?? 'local' },
    });
  const built = new Map<string, unknown>();
  if (options.dynamo) built.set('dynamo', options.dynamo);
  return {
    env,
    logger,
    storeConfig,
    kmsKeyProvider: options.kmsKeyProvider,
    once<T>(key: string, make: () => T): T {
      if (!built.has(key)) built.set(key, make());
      return built.get(key) as T;
    },
  };
}

/** The one DynamoDB client of these services. */
export const dynamoClient = (services: Services): DynamoDBClient =>
  services.once('dynamo', () => createDynamoClient(services.storeConfig));

/**
 * The cipher of refresh tokens and code verifiers: data keys from KMS when `FIELD_KEY_ARN` is set (the
 * stack sets it on the functions it lets use the key), else from the local key file `FIELD_KEY_FILE`
 * (`npm start` creates one). Built on the first call: a handler that encrypts or decrypts calls this
 * at init, so a missing setting or a bad key file fails there.
 * @param kms makes the KMS provider @default `services.kmsKeyProvider`
 * @throws {ConfigError} neither setting, both, a malformed ARN, a missing, unreadable or open key file,
 *   or a KMS key with no factory
 */
export const fieldCipher = (services: Services, kms = services.kmsKeyProvider): FieldCipher =>
  services.once('fieldCipher', () => createFieldCipher(createFieldKeyProvider(readFieldKeyConfig(services.env), kms)));

/**
 * What both stores do with a secret field stored before encryption (`FIELD_PLAINTEXT`), read once.
 * @throws {ConfigError} a value other than `accept` or `refuse`
 */
export const plaintextFieldPolicy = (services: Services): PlaintextFieldPolicy =>
  services.once('plaintextFields', () => readPlaintextFieldPolicy(services.env));

/** The tokens table. Its cipher is built on first use: a token reader never decrypts anything. */
export const tokenStore = (services: Services): TokenStore =>
  services.once(
    'tokens',
    () =>
      new DynamoTokenStore(
        dynamoClient(services),
        services.storeConfig.tokensTable,
        lazyFieldCipher(() => fieldCipher(services)),
        plaintextFieldPolicy(services),
      ),
  );

/** The sessions table (login attempts, connect links). Its cipher is built on first use, as above. */
export const sessionStore = (services: Services): SessionStore =>
  services.once(
    'sessions',
    () =>
      new DynamoSessionStore(
        dynamoClient(services),
        services.storeConfig.sessionsTable,
        lazyFieldCipher(() => fieldCipher(services)),
        plaintextFieldPolicy(services),
      ),
  );

/**
 * The provider settings (`CLIENT_ID`, `OAUTH2_BASE_URL`, ...).
 * @throws {ConfigError} naming the missing or malformed variable
 */
export const providerConfig = (services: Services): ProviderConfig =>
  services.once('providerConfig', () => readProviderConfig(services.env));

/**
 * The client secret, from Secrets Manager (`CLIENT_SECRET_ARN`, cached) or `CLIENT_SECRET`. Where it
 * comes from is read on the first call, so a caller that may never need the secret calls this late.
 * @throws {ConfigError} neither variable is set
 */
export const secretSource = (services: Services): SecretSource =>
  services.once('secret', () => createSecretSource(readSecretConfig(services.env)));

/**
 * The provider client. It reads the secret when a request needs it: an entry that must fail at init
 * without a secret setting calls {@link secretSource} itself (the reader reads fresh tokens with none).
 */
export const providerClient = (services: Services): ProviderClient =>
  services.once('provider', () => createProviderClient(providerConfig(services), () => secretSource(services)()));

/** Lifecycle events: EventBridge when `EVENT_BUS_NAME` is set, else the log. */
export const eventPublisher = (services: Services): EventPublisher =>
  services.once('events', () => createEventPublisher(services.env, services.logger));

/** The mass-refusal counters (in the sessions table, under their own key prefix). */
export const refusalCounter = (services: Services): RefusalCounter =>
  services.once('refusals', () => new DynamoRefusalCounter(dynamoClient(services), services.storeConfig.sessionsTable));

/**
 * The refresh policy (`REFRESH_POLICY`, `KEEP_ALIVE_SECONDS`): one fact for every writer of a user's
 * schedule (the callback, the refresh function, the scheduled refresher, in-process readers).
 * @throws {ConfigError} an unknown policy or a keep-alive out of range
 */
export const refreshPolicy = (services: Services): RefreshPolicy =>
  services.once('refreshPolicy', () => readRefreshPolicy(services.env));

/**
 * The single-flight refresher over the tokens table and the provider, with the limits of
 * `FORCE_REFRESH_MIN_INTERVAL_SECONDS` and `MASS_REFUSAL_*` and a lease sized from `REFRESH_TIMEOUT_MS`.
 * @throws {ConfigError} a malformed limit
 */
export const tokenRefresher = (services: Services): TokenRefresher =>
  services.once('refresher', () => {
    const limits = readRefreshLimits(services.env);
    return createTokenRefresher({
      tokens: tokenStore(services),
      client: providerClient(services),
      events: eventPublisher(services),
      logger: services.logger,
      refusals: refusalCounter(services),
      refreshTimeoutMs: providerConfig(services).refreshTimeoutMs,
      forceRefreshMinIntervalSeconds: limits.forceRefreshMinIntervalSeconds,
      massRefusal: { threshold: limits.massRefusalThreshold, windowSeconds: limits.massRefusalWindowSeconds },
      policy: refreshPolicy(services),
    });
  });
