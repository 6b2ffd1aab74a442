/**
 * `completeConnection`: what an app backend calls when the browser comes back to its return URL
 * with `?connect_code=...`. The app passes its own signed-in user's id; the broker stores the grant
 * under that user only if the code's connect link was created for that same user. A link forwarded
 * to someone else thus binds nothing: their browser brings the code back to the app under *their*
 * session, the ids differ, and the code is cancelled.
 *
 * Two modes, like the token reader:
 * - through the broker's complete function (`COMPLETE_FUNCTION_NAME` set; an app in AWS, or locally
 *   through `npm start`'s stand-in of it), which answers ids only (`connect-remote.ts`; the whole of
 *   it in the published package). The app's role needs `lambda:InvokeFunction` on it and nothing on
 *   the tokens table: `grantCreateLoginLinks()` grants exactly that (with the link writes).
 * - in process (the tables reachable directly; the broker's CLI and tests): the same flow, here.
 *
 * @example
 * import { completeConnection, ConnectionRefusedError } from 'kroger-token-broker';
 * const { userId, profileId } = await completeConnection(req.query.connect_code, session.userId);
 */
import { parseAppUserId, parseConnectCode, type Connection } from '../core/connect';
import { createLogger } from '../adapters/logger';
import { completeConnection as complete } from '../flows/complete-flow';
import { createServices, eventPublisher, sessionStore, tokenStore } from '../services';
import { completeInvoker, type CompleteConnectionOptions, completeThroughFunction } from './connect-remote';
import { lambdaClientSettings } from './remote';

export type { CompleteConnectionOptions, CompleteInvoker } from './connect-remote';

/**
 * Completes the connection of `connectCode` (from the `connect_code` query parameter of the link's
 * return URL, or pasted by the person) for `appUserId`, the app's own signed-in user: stores the
 * grant under `appUserId` and returns it with the connected Kroger profile id. Call it only for the
 * user your app has authenticated in this request, never for an id taken from the request itself.
 * @throws {ArgumentError} a malformed or oversized code, or a bad app user id (checked before any I/O)
 * @throws {ConnectionRefusedError} the code is unknown, used, expired, cancelled, or was created for
 * another app user (which cancels it); `error.code` says which, nothing was stored
 * @see https://www.rfc-editor.org/rfc/rfc9700#section-4.7
 */
export async function completeConnection(
  connectCode: string,
  appUserId: string,
  options: CompleteConnectionOptions = {},
): Promise<Connection> {
  const request = { connectCode: parseConnectCode(connectCode), appUserId: parseAppUserId(appUserId) };
  const env = options.env ?? process.env;
  const functionName = env.COMPLETE_FUNCTION_NAME?.trim();
  if (functionName || options.invokeComplete) {
    return completeThroughFunction(
      request,
      options.invokeComplete ?? completeInvoker(functionName!, lambdaClientSettings(env)),
    );
  }
  const logger =
    options.logger ?? createLogger({ level: env.LOG_LEVEL ?? 'warn', base: { service: 'kroger-token-broker' } });
  const services = createServices(env, { logger, dynamo: options.dynamo });
  return complete(
    {
      sessions: sessionStore(services),
      tokens: tokenStore(services),
      events: eventPublisher(services),
      logger,
    },
    request,
  );
}
