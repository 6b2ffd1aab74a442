/**
 * `GET /health`: a fixed answer for uptime checks. It reads no table and no secret, so a check every
 * minute costs one cheap invocation and proves what matters: the function started with its
 * configuration (a bad configuration fails the init, and API Gateway answers 500 instead).
 */
import { ConfigError } from './errors';
import type { Env } from './config';
import { type HttpResult, securityHeaders } from './http';

/** The route, on the host of /login and /callback. */
export const HEALTH_PATH = '/health';

/** What `GET /health` answers with. */
export interface HealthStatus {
  readonly status: 'ok';
  /** The broker's version (package.json), set by the construct as `BROKER_VERSION`. */
  readonly version: string;
}

const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$/;

/**
 * Reads `BROKER_VERSION` (the construct and the local stack set it from package.json).
 * @returns `"unknown"` when it is not set: the version is information, not configuration to fail on
 * @throws {ConfigError} a value that is not a version string
 */
export function readBrokerVersion(env: Env): string {
  const value = env.BROKER_VERSION?.trim();
  if (!value) return 'unknown';
  if (!VERSION.test(value)) {
    throw new ConfigError(`BROKER_VERSION must be a version like "1.2.3", got "${value}"`);
  }
  return value;
}

/** The 200 answer, JSON, never cached. */
export function healthResult(version: string): HttpResult {
  const body: HealthStatus = { status: 'ok', version };
  return {
    statusCode: 200,
    headers: { ...securityHeaders(), 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify(body),
  };
}
