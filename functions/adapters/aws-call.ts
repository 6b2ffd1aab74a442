/**
 * One seam for every call the broker makes to an AWS service: a hard limit on the call (the SDK's
 * attempts, back-off and adaptive rate-limit waits included, and never past the request's deadline),
 * and the SDK's failures sorted into what they mean. A throttled, slow, failing (5xx) or unreachable
 * service becomes the dependency's typed, retryable error; anything else (a refused condition, a
 * validation error, access denied) is left as the SDK raised it, for the caller to decide.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { AWS_CONNECTION_TIMEOUT_MS, AWS_REQUEST_TIMEOUT_MS } from '../core/budget';
import { limitMs } from './deadline';

/** The signal of the {@link callAws} call in progress, for {@link gateAttempts}. */
const callSignal = new AsyncLocalStorage<AbortSignal>();

/** The name of the middleware {@link gateAttempts} adds. */
const GATE = 'brokerCallLimitGate';

/** What {@link gateAttempts} needs of a client: its middleware stack. */
interface WithMiddleware {
  readonly middlewareStack: {
    add(middleware: unknown, options: { step: 'finalizeRequest'; priority: 'low'; name: string }): void;
    identify(): string[];
  };
}

/**
 * Adds a middleware to a client of the broker's own that refuses to send an attempt (a retry after
 * back-off or the adaptive rate limiter's wait) once the {@link callAws} call it belongs to has given
 * up: the same guarantee as passing an abort signal in each `send`, without the options that make the
 * SDK resolve its middleware stack again on every request (about 60 us of CPU per request, measured).
 * An attempt already sent is still cut by the client's request timeout.
 */
export function gateAttempts<T extends WithMiddleware>(client: T): T {
  client.middlewareStack.add(
    (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
      if (callSignal.getStore()?.aborted) {
        // Named as an abort, which the SDK never retries (a timeout it would try again, in vain).
        throw Object.assign(new Error('the call gave up before this attempt was sent'), { name: 'AbortError' });
      }
      return next(args);
    },
    // Inside the retry middleware (finalizeRequest, high priority): once per attempt.
    { step: 'finalizeRequest', priority: 'low', name: GATE },
  );
  return client;
}

/** Whether `client` has the gate of {@link gateAttempts}. */
export function hasAttemptGate(client: unknown): boolean {
  const stack = (client as Partial<WithMiddleware>).middlewareStack;
  return typeof stack?.identify === 'function' && stack.identify().some((entry) => entry.startsWith(`${GATE} `));
}

/**
 * Timeouts and retries of the KMS, Secrets Manager and EventBridge clients: bounded per attempt, so
 * a stalled connection fails over to the SDK's next attempt instead of holding the call until its
 * deadline. (DynamoDB has its own, `DYNAMODB_CLIENT_LIMITS`.)
 */
export const AWS_CLIENT_LIMITS = {
  maxAttempts: 3,
  requestHandler: {
    connectionTimeout: AWS_CONNECTION_TIMEOUT_MS,
    requestTimeout: AWS_REQUEST_TIMEOUT_MS,
    throwOnRequestTimeout: true,
  },
} as const;

/** What a failed AWS call says about the service's availability. */
export interface AwsFault {
  /** Throttled: the service asked the caller to slow down. */
  readonly throttled: boolean;
  /**
   * The request may have reached the service and been processed (a timeout, a connection lost
   * mid-answer, a 5xx): a write may have landed.
   */
  readonly outcomeUnknown: boolean;
  /** The SDK error's name (or network code): never a message, which may quote a request. */
  readonly name: string;
  /** How long to wait before trying again, when the fault says. */
  readonly retryAfterSeconds?: number;
}

/** Error names AWS services use for throttling, across DynamoDB, KMS, Secrets Manager, Lambda, EventBridge. */
const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
  'LimitExceededException',
  'EC2ThrottledException',
  'SlowDown',
  'TransactionInProgressException',
]);

/** Error names of a service failing on its side (some are answered with a 4xx status). */
const SERVER_FAILURE = new Set([
  'InternalServerError',
  'InternalServerErrorException',
  'InternalFailure',
  'InternalServiceError',
  'InternalServiceErrorException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'ServiceException',
  'KMSInternalException',
  'DependencyTimeoutException',
  'ResourceNotReadyException',
]);

/** Timeouts: the request may have been processed. */
const TIMEOUTS = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'AbortError']);

/** Network failures before anything was sent: the request never reached the service. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Network failures after the request may have been sent. */
const CONNECTION_LOST = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/**
 * Sorts an SDK (or network) error: a fault of the service's availability, or undefined for anything
 * else (a conditional check that failed, a validation error, access denied, a missing resource).
 */
export function classifyAwsError(error: unknown): AwsFault | undefined {
  if (!(error instanceof Error)) return undefined;
  // The SDK wraps a thrown value that is not an Error of its own realm (Node's socket errors under a
  // test runner's sandbox) and keeps only the name in the message: read it back.
  const wrapped = /^AWS SDK error wrapper for (\w+)/.exec(error.message)?.[1];
  const name = wrapped ?? error.name;
  const code = (error as { code?: unknown }).code;
  const metadata = (error as { $metadata?: { httpStatusCode?: number; attempts?: number } }).$metadata;
  const status = metadata?.httpStatusCode;
  // The SDK raises the last attempt's error only: after more than one attempt, an earlier one may
  // have timed out after it was applied, so a refusal now proves nothing about what landed.
  const retried = (metadata?.attempts ?? 1) > 1;
  if (THROTTLING.has(name) || status === 429) {
    // The SDK's throttling back-off starts at 1 s: about what a throttled caller should wait.
    return { throttled: true, outcomeUnknown: retried, name, retryAfterSeconds: 1 };
  }
  if (SERVER_FAILURE.has(name) || (status !== undefined && status >= 500)) {
    return { throttled: false, outcomeUnknown: true, name };
  }
  if (TIMEOUTS.has(name)) return { throttled: false, outcomeUnknown: true, name };
  if (typeof code === 'string' && NOT_SENT.has(code)) return { throttled: false, outcomeUnknown: retried, name: code };
  if (typeof code === 'string' && CONNECTION_LOST.has(code))
    return { throttled: false, outcomeUnknown: true, name: code };
  // A response the SDK could not read at all (no status: a socket closed mid-answer).
  if ((error as { $retryable?: unknown }).$retryable !== undefined) {
    return { throttled: false, outcomeUnknown: true, name };
  }
  return undefined;
}

/** Thrown inside {@link callAws} when its limit passed: a timeout, classified like the SDK's. */
class CallLimitReached extends Error {
  override readonly name = 'TimeoutError';
}

/**
 * Runs one AWS call within `budgetMs` (or what is left of the request's deadline, if less). The
 * signal given to `send` aborts the SDK's work when the limit passes, so a request waiting on a
 * retry or on the adaptive rate limiter is never sent late; the call then fails as a timeout.
 * @param toError the dependency's typed error for a fault; any other failure is rethrown as is
 */
export async function callAws<T>(
  budgetMs: number,
  send: (options: { abortSignal: AbortSignal }) => Promise<T>,
  toError: (fault: AwsFault, cause: unknown) => Error,
): Promise<T> {
  const limit = limitMs(budgetMs);
  // Past the request's deadline: nothing is sent (an answer could not be used anyway).
  if (limit <= 0) {
    const error = new CallLimitReached('the request deadline has passed');
    throw toError({ throttled: false, outcomeUnknown: false, name: error.name }, error);
  }
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new CallLimitReached(`the call did not finish within ${limit} ms`);
      controller.abort(error);
      reject(error);
    }, limit);
  });
  try {
    return await Promise.race([
      callSignal.run(controller.signal, () => send({ abortSignal: controller.signal })),
      expired,
    ]);
  } catch (error) {
    const fault = classifyAwsError(error);
    throw fault ? toError(fault, error) : error;
  } finally {
    clearTimeout(timer);
  }
}
