/**
 * An app backend that connects its users' Kroger accounts through the broker, complete: it creates
 * a connect link for the signed-in user, sends the browser there, and completes the connection when
 * the browser comes back with `?connect_code=...`, for the user signed in *here*. docs/connect.md
 * shows this file; the browser test (test/e2e/connect-browser.test.ts) runs it.
 *
 * Environment (from the broker's `loginLinkEnvironment`): `LOGIN_URL`, `SESSIONS_TABLE`,
 * `COMPLETE_FUNCTION_NAME` and `RETURN_TO_ALLOWLIST`, which must allow `<baseUrl>/kroger/return`.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { ArgumentError, completeConnection, ConnectionRefusedError, createLoginLink } from '../functions/reader';

/** How the app is set up. */
export interface ConnectAppOptions {
  /** This app's public origin, e.g. `https://app.example.com`. */
  readonly baseUrl: string;
  /** The user signed in to this app for this request (your session), or undefined. */
  readonly currentUser: (req: IncomingMessage) => string | undefined;
  /** Where the broker's settings come from. @default process.env */
  readonly env?: Record<string, string | undefined>;
  /** Where the app logs. @default console */
  readonly log?: Pick<Console, 'info' | 'warn' | 'error'>;
}

/** What the person is told after coming back, by the broker's refusal codes. */
const REFUSED: Record<string, string> = {
  CONNECT_CODE_FOREIGN:
    'This connection was started from another account of this app, so it was not connected to yours and is now cancelled. If someone sent you a link to connect Kroger, do not use it.',
  CONNECT_CODE_CANCELLED: 'This connection was cancelled. Please connect again.',
  CONNECT_CODE_USED: 'This connection was already completed.',
  CONNECT_CODE_EXPIRED: 'This connection took too long and expired. Please connect again.',
  CONNECT_CODE_UNKNOWN: 'This connection is not known. Please connect again.',
};

function page(res: ServerResponse, status: number, title: string, text: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    // The return URL carried a one-time code: keep it out of caches and out of Referer headers.
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
  });
  // Only fixed text here; nothing from the request is reflected.
  res.end(`<!doctype html><meta charset="utf-8"><title>${title}</title><h1>${title}</h1><p>${text}</p>`);
}

/** The app's request listener: `/kroger/connect`, `/kroger/return`, `/kroger/done`. */
export function createConnectApp(options: ConnectAppOptions): RequestListener {
  const env = options.env ?? process.env;
  const log = options.log ?? console;
  const returnUrl = `${options.baseUrl}/kroger/return`;

  return async (req, res) => {
    const url = new URL(req.url ?? '/', options.baseUrl);
    const user = options.currentUser(req);
    try {
      if (url.pathname === '/kroger/connect') {
        if (!user) return page(res, 401, 'Sign in first', 'Sign in to this app, then connect your Kroger account.');
        // A link for the user signed in here; it is worth nothing to anyone else (see /kroger/return).
        const { loginUrl } = await createLoginLink(user, { env, returnTo: returnUrl });
        res.writeHead(303, { location: loginUrl, 'cache-control': 'no-store' }).end();
        return;
      }

      if (url.pathname === '/kroger/return') {
        const codes = url.searchParams.getAll('connect_code');
        // No code: the sign-in was cancelled or failed at the broker, whose page offered the way back.
        if (codes.length === 0) return page(res, 200, 'Kroger not connected', 'Connect again when you are ready.');
        if (codes.length > 1) return page(res, 400, 'Not connected', 'The address has more than one connect code.');
        if (!user)
          return page(res, 401, 'Sign in first', 'Sign in to this app, then connect your Kroger account again.');
        // Complete for the user signed in to this app, never for an id taken from the request.
        const { profileId } = await completeConnection(codes[0], user, { env });
        log.info(`kroger account ${profileId} connected to user ${user}`);
        // Leave the URL with the (now used) code at once: out of the address bar and the history.
        res.writeHead(303, { location: '/kroger/done', 'cache-control': 'no-store' }).end();
        return;
      }

      if (url.pathname === '/kroger/done') {
        return page(res, 200, 'Kroger connected', 'Your Kroger account is connected.');
      }
      return page(res, 404, 'Not found', 'There is no such page.');
    } catch (error) {
      if (error instanceof ArgumentError) {
        // A malformed or oversized code (or a bad user id): refused before the broker is asked.
        return page(res, 400, 'Not connected', 'The connect code in this address is malformed.');
      }
      if (error instanceof ConnectionRefusedError) {
        // Nothing was connected. A foreign code is the forwarded-link attack, or a mix-up.
        if (error.code === 'CONNECT_CODE_FOREIGN') log.warn(`foreign connect code presented for user ${user}`);
        return page(res, 409, 'Not connected', REFUSED[error.code] ?? 'Please connect again.');
      }
      log.error('connecting Kroger failed', error);
      return page(res, 502, 'Not connected', 'Something went wrong. Please try again later.');
    }
  };
}
