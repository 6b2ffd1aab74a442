/**
 * A small structured JSON logger: one line per entry on stdout, which Lambda ships to CloudWatch
 * as-is. Written here instead of importing Powertools Logger to keep handler bundles (and cold
 * starts) at the floor set by the AWS SDK clients they need anyway.
 *
 * It cannot log a credential by accident: keys that name one are replaced, and errors are reduced
 * to name, code and message (never their request, response or headers).
 */

/** Levels in increasing severity. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Keys whose values are never written, whatever their nesting. */
const SECRET_KEY = /(token|secret|verifier|password|authorization|cookie|^code$|connect_?code|^binding)/i;

/** Structured fields of one entry. */
export type LogFields = Record<string, unknown>;

/** The logger the flows and adapters receive. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /**
   * A CloudWatch Embedded Metric Format entry: written whatever the level (metrics must not vanish
   * with a quieter log level), with the `_aws` metadata passed through as built by the caller.
   * @see https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
   */
  metrics(message: string, fields: LogFields & { _aws: unknown }): void;
  /** A logger that adds `fields` to every entry (for example the request id). */
  child(fields: LogFields): Logger;
}

/** What a dropped message is replaced with. */
export const OMITTED_MESSAGE = '[omitted: may quote the data it failed on]';

/**
 * True for errors whose message may quote the input they failed on: a JSON parse error quotes the
 * first characters of the body (`Unexpected token 'a', "access_tok"... is not valid JSON`), which can
 * be a token when a provider answers in the wrong format.
 */
function mayQuoteInput(error: Error): boolean {
  return error instanceof SyntaxError || error.name === 'SyntaxError';
}

/** An OAuth error code as RFC 6749 section 5.2 allows it, bounded; anything else is not logged. */
const OAUTH_ERROR_CODE = /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/;

/**
 * Reduces an error to what is safe and useful in a log: name, stable code, message, cause chain. The
 * message is dropped for errors that may quote their input (see {@link OMITTED_MESSAGE}).
 */
export function describeError(error: unknown, depth = 0): LogFields | string {
  if (!(error instanceof Error)) return typeof error === 'string' ? error : 'non-error value thrown';
  const out: LogFields = { name: error.name, message: mayQuoteInput(error) ? OMITTED_MESSAGE : error.message };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') out.code = code;
  const oauthError = (error as { error?: unknown }).error ?? (error as { oauthError?: unknown }).oauthError;
  if (typeof oauthError === 'string' && OAUTH_ERROR_CODE.test(oauthError)) out.oauthError = oauthError;
  const status = (error as { status?: unknown }).status;
  if (typeof status === 'number') out.status = status;
  if (error.cause !== undefined && depth < 3) out.cause = describeError(error.cause, depth + 1);
  return out;
}

function sanitize(value: unknown, depth: number): unknown {
  if (value instanceof Error) return describeError(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 4) return '[depth]';
  if (Array.isArray(value)) return value.map((v) => sanitize(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) ? '[redacted]' : sanitize(v, depth + 1);
  }
  return out;
}

/**
 * Creates a logger writing JSON lines to `write` (stdout by default) at `level` and above.
 * @param base fields on every entry, such as the service name
 */
export function createLogger(
  options: {
    level?: string;
    base?: LogFields;
    write?: (line: string) => void;
    now?: () => Date;
  } = {},
): Logger {
  const threshold = LEVELS[(options.level?.toLowerCase() as LogLevel) ?? 'info'] ?? LEVELS.info;
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const now = options.now ?? (() => new Date());
  const make = (base: LogFields): Logger => {
    const log = (level: LogLevel, message: string, fields?: LogFields, force = false): void => {
      if (!force && LEVELS[level] < threshold) return;
      const { _aws: metadata, ...rest } = { ...base, ...fields };
      const entry = sanitize(rest, 0) as LogFields;
      // `_aws` is metric metadata the code builds itself (names and units, no values from outside).
      const emf = force && metadata !== undefined ? { _aws: metadata } : {};
      write(JSON.stringify({ level: level.toUpperCase(), timestamp: now().toISOString(), message, ...entry, ...emf }));
    };
    return {
      debug: (m, f) => log('debug', m, f),
      info: (m, f) => log('info', m, f),
      warn: (m, f) => log('warn', m, f),
      error: (m, f) => log('error', m, f),
      metrics: (m, f) => log('info', m, f, true),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return make(options.base ?? {});
}
