/**
 * The callback as a browser meets it: the provider's redirect to /callback, answered with a 303 to
 * the clean /callback and a result cookie, then that clean page requested with the cookie.
 */
import type { HttpResult } from '../../functions/core/http';
import { RESULT_COOKIE } from '../../functions/core/result-page';
import { type CallbackDeps, handleCallback } from '../../functions/flows/callback-flow';
import { cookiePair, getEvent } from './events';

/** What the browser saw: the first answer (at the URL with `code` and `state`) and the page it ends on. */
export interface CallbackVisit {
  /** The answer to the provider's redirect. */
  readonly first: HttpResult;
  /** The page shown: the clean result page, or `first` when it was not a redirect to it. */
  readonly page: HttpResult;
}

/** Sends the provider's redirect (`query`, `cookies`) to the callback and follows its clean redirect. */
export async function visitCallback(
  query: string,
  cookies: string[] | undefined,
  deps: CallbackDeps,
): Promise<CallbackVisit> {
  const first = await handleCallback(getEvent('/callback', query, cookies), deps);
  const clean = new URL(deps.provider.redirectUri);
  if (first.statusCode !== 303 || first.headers.location !== clean.origin + clean.pathname)
    return { first, page: first };
  const result = first.cookies?.find((c) => c.startsWith(`${RESULT_COOKIE}=`));
  const page = await handleCallback(getEvent(clean.pathname, '', result ? [cookiePair(result)] : undefined), deps);
  return { first, page };
}
