/**
 * The ways Kroger and other strict OAuth servers answer a token request that the broker must
 * survive: refusals shaped unlike RFC 6749's `invalid_grant`, refused client credentials, and
 * 200 answers that are not a usable token response. The sandbox's token route writes them.
 *
 * Every body that carries a token-like value uses one `canary` (43 base64url characters, the
 * shape of a real token) so a test can grep logs, errors and responses for a leak.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2 (the error response these depart from)
 */
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * What `POST /__sandbox/refuse-token` can make the token endpoint answer:
 * - `kroger-invalid-request`: 400 `{"error":"invalid_request","error_description":"Missing/Invalid Refresh Token"}`,
 *   Kroger's documented answer to a used or invalid refresh token (an OAuth error, but not `invalid_grant`).
 * - `kroger-errors-shape`: 400 `{"errors":{"timestamp":<ms>,"code":"AUTH-1007-400","reason":"Missing/Invalid Refresh Token"}}`,
 *   Kroger's API error shape, with no OAuth `error` member.
 * - `bare-400`: 400 with an empty body and no Content-Type (glewlwyd's answer to a revoked refresh token).
 * - `invalid-client`: 401 `{"error":"invalid_client","error_description":"client authentication failed"}` with
 *   `WWW-Authenticate: Basic realm="<issuer>", error="invalid_client", ...`, exactly what the sandbox answers
 *   to a wrong secret, but for the right one (a rotated or disabled client).
 * - `invalid-client-no-challenge`: the same 401 without `WWW-Authenticate`.
 * - `non-json-form`: 200 `application/x-www-form-urlencoded`, `access_token=<canary>&token_type=bearer&...`.
 * - `non-json-html`: 200 `text/html` page whose first 200 characters contain `access_token=<canary>`.
 * - `oversized`: 200 `application/json`, a valid token response padded to exactly {@link OVERSIZED_BODY_BYTES},
 *   sent chunked (no Content-Length, so only counting the bytes read can stop it).
 * - `stalled-body`: 200 `application/json` with the Content-Length of a full token response, of which only
 *   the first bytes (`{"access_token":"<canary>",`) are sent; then nothing until the client hangs up.
 */
export const REFUSAL_MODES = [
  'kroger-invalid-request',
  'kroger-errors-shape',
  'bare-400',
  'invalid-client',
  'invalid-client-no-challenge',
  'non-json-form',
  'non-json-html',
  'oversized',
  'stalled-body',
] as const;
export type RefusalMode = (typeof REFUSAL_MODES)[number];

/** The modes whose body carries the canary. */
export const CANARY_MODES: ReadonlySet<RefusalMode> = new Set([
  'non-json-form',
  'non-json-html',
  'oversized',
  'stalled-body',
]);

/**
 * How a revoked account's refresh tokens are answered from then on (`POST /__sandbox/revoke-account`):
 * `invalid-grant` is oidc-provider's own RFC 6749 answer; the others are the refusal modes of the same name.
 */
export const GRANT_REFUSALS = ['invalid-grant', 'kroger-invalid-request', 'kroger-errors-shape', 'bare-400'] as const;
export type GrantRefusal = (typeof GRANT_REFUSALS)[number];

/** Which token requests a refusal applies to, by `grant_type`. */
export const REFUSAL_GRANT_TYPES = ['any', 'refresh_token', 'authorization_code'] as const;
export type RefusalGrantType = (typeof REFUSAL_GRANT_TYPES)[number];

/** Total size of the `oversized` body: 5 MiB, far above any sane limit for a token response. */
export const OVERSIZED_BODY_BYTES = 5 * 1024 * 1024;

/** Kroger's reason text for a used or invalid refresh token (its refresh-token tutorial). */
const KROGER_REASON = 'Missing/Invalid Refresh Token';
/**
 * Kroger does not publish its token endpoint's error codes; this one follows the `<API>-<number>-<status>`
 * pattern of the codes its other APIs return (e.g. `PRODUCT-2011-400`).
 */
const KROGER_ERROR_CODE = 'AUTH-1007-400';
const CLIENT_REFUSED = { error: 'invalid_client', error_description: 'client authentication failed' };
const PAD_CHUNK_BYTES = 64 * 1024;

/** What a refusal needs besides its mode. */
export interface RefusalContext {
  /** The token-like value placed in bodies of {@link CANARY_MODES}. */
  readonly canary: string;
  /** `realm` of the `invalid-client` challenge, as oidc-provider sets it. */
  readonly issuer: string;
  /** `expires_in` of the token-looking 200 bodies. */
  readonly expiresIn: number;
}

/**
 * Writes the refusal straight to the Node response (the caller sets Koa's `ctx.respond = false`).
 * Resolves once the body is sent, or, for `stalled-body` and a client that stops reading an
 * `oversized` body, once the client hangs up.
 */
export async function sendRefusal(res: ServerResponse, mode: RefusalMode, ctx: RefusalContext): Promise<void> {
  switch (mode) {
    case 'kroger-invalid-request':
      return sendJson(res, 400, { error: 'invalid_request', error_description: KROGER_REASON });
    case 'kroger-errors-shape':
      return sendJson(res, 400, {
        errors: { timestamp: Date.now(), code: KROGER_ERROR_CODE, reason: KROGER_REASON },
      });
    case 'bare-400':
      res.writeHead(400, { 'Cache-Control': 'no-store', 'Content-Length': '0' });
      res.end();
      return;
    case 'invalid-client':
      // The challenge oidc-provider sends for a wrong secret (RFC 6749 section 5.2 asks for one
      // when the client authenticated with the Authorization header).
      return sendJson(res, 401, CLIENT_REFUSED, {
        'WWW-Authenticate': `Basic realm="${ctx.issuer}", error="invalid_client", error_description="${CLIENT_REFUSED.error_description}"`,
      });
    case 'invalid-client-no-challenge':
      return sendJson(res, 401, CLIENT_REFUSED);
    case 'non-json-form':
      return send(
        res,
        200,
        'application/x-www-form-urlencoded',
        `access_token=${ctx.canary}&token_type=bearer&expires_in=${ctx.expiresIn}&refresh_token=${ctx.canary}`,
      );
    case 'non-json-html':
      // What a gateway's error page echoing the upstream answer looks like: the token near the top,
      // where a client that logs "the first bytes of an unexpected body" would print it.
      return send(
        res,
        200,
        'text/html; charset=utf-8',
        `<!DOCTYPE html><html><body><pre>access_token=${ctx.canary}&amp;token_type=bearer</pre>` +
          '<p>The service is temporarily unable to process the response.</p></body></html>\n',
      );
    case 'oversized':
      return sendOversized(res, ctx);
    case 'stalled-body':
      return sendStalled(res, ctx);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body), headers);
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...headers,
    'Cache-Control': 'no-store',
    'Content-Type': type,
    'Content-Length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}

async function sendOversized(res: ServerResponse, ctx: RefusalContext): Promise<void> {
  const head = `{"access_token":"${ctx.canary}","token_type":"bearer","expires_in":${ctx.expiresIn},"padding":"`;
  const tail = '"}';
  const padBytes = OVERSIZED_BODY_BYTES - Buffer.byteLength(head) - tail.length;
  function* chunks(): Generator<string> {
    yield head;
    for (let left = padBytes; left > 0; left -= PAD_CHUNK_BYTES) yield 'a'.repeat(Math.min(left, PAD_CHUNK_BYTES));
    yield tail;
  }
  // No Content-Length: Node sends it chunked, so a size check on the header alone cannot catch it.
  res.writeHead(200, { 'Cache-Control': 'no-store', 'Content-Type': 'application/json; charset=utf-8' });
  // pipeline honours backpressure and settles when the client aborts; an abort is the expected end.
  await pipeline(Readable.from(chunks()), res).catch(() => undefined);
}

async function sendStalled(res: ServerResponse, ctx: RefusalContext): Promise<void> {
  const sent = `{"access_token":"${ctx.canary}",`;
  const full = `${sent}"token_type":"bearer","expires_in":${ctx.expiresIn},"refresh_token":"${ctx.canary}"}`;
  res.writeHead(200, {
    'Cache-Control': 'no-store',
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(full)),
  });
  res.write(sent);
  // The rest never comes; wait for the client (or the server's shutdown) to close the connection.
  await new Promise((resolve) => res.once('close', resolve));
}
