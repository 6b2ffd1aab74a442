/**
 * What a person sees at the end of /login or /callback, as a closed vocabulary: each outcome has
 * its status, its words and its one next step, written here once. The callback does not render its
 * page at the URL the provider sent the browser to (that URL carries `code` and `state`): it
 * redirects to its own clean path and hands the outcome over in a short-lived cookie, which holds a
 * {@link ResultKind} and a few checked values, never text. A forged cookie can therefore only pick
 * one of these pages; it cannot put words of its own on the broker's origin.
 */
import { describeProviderError } from './callback';
import { DEFAULT_APP_NAME, isAllowedTarget } from './config';
import { CONNECT_CODE_LENGTH, PENDING_CONNECTION_TTL_SECONDS } from './connect';
import type { PageContent } from './http';

/** Every outcome a page can report. */
export const RESULT_KINDS = [
  'connected',
  'pending',
  'cancelled',
  'provider-error',
  'attempt-invalid',
  'wrong-browser',
  'malformed',
  'issuer-mismatch',
  'code-refused',
  'unavailable',
  'bad-response',
  'service-rejected',
  'storage-unavailable',
  'link-bound',
  'public-off',
  'invalid-link',
  'return-to-refused',
  'nothing',
  'internal',
] as const;

/** One of {@link RESULT_KINDS}. */
export type ResultKind = (typeof RESULT_KINDS)[number];

/** An outcome to show, with what the page needs to say it. */
export interface Outcome {
  readonly kind: ResultKind;
  /** Whether the sign-in came through a connect link (start again from the app) or /login itself. */
  readonly via: 'link' | 'public';
  /** The provider's `error` value, for `provider-error`. */
  readonly providerError?: string;
  /** The connect code to copy, for `pending` without a return URL. */
  readonly connectCode?: string;
  /** Where the person came from: offered as "Return to ..." (checked again when shown). */
  readonly returnTo?: string;
}

/** What the pages need from the configuration. */
export interface PageContext {
  readonly appName: string;
  readonly publicLogin: boolean;
  /** The broker's /login, for "Start again" after a public sign-in. */
  readonly loginUrl: string;
  readonly returnToAllowlist: readonly string[];
}

/** Name of the cookie that carries an outcome from the callback to its clean result page. */
export const RESULT_COOKIE = 'kroger_broker_result';

/** How long the result page can be shown (and reloaded) after the callback. */
export const RESULT_COOKIE_MAX_AGE_SECONDS = 300;

const STATUS: Readonly<Record<ResultKind, number>> = {
  connected: 200,
  pending: 200,
  cancelled: 403,
  'provider-error': 400,
  'attempt-invalid': 400,
  'wrong-browser': 400,
  malformed: 400,
  'issuer-mismatch': 400,
  'code-refused': 400,
  unavailable: 503,
  'bad-response': 502,
  'service-rejected': 502,
  'storage-unavailable': 503,
  'link-bound': 409,
  'public-off': 403,
  'invalid-link': 400,
  'return-to-refused': 400,
  nothing: 400,
  internal: 500,
};

const NOTHING_SAVED = 'Nothing was saved.';

/**
 * `Retry-After` of every 503 page: a throttled or briefly unreachable dependency (Kroger, DynamoDB,
 * KMS, Secrets Manager) is usually back within seconds; the page's words ask a person for minutes.
 */
export const RETRY_AFTER_SECONDS = 10;

type Words = Pick<PageContent, 'title' | 'message' | 'notes'> & { readonly tone: 'ok' | 'wait' | 'error' };

function words(outcome: Outcome, app: string, hasAction: boolean): Words {
  const again = hasAction ? 'Please start again.' : `Please start again from ${app}.`;
  switch (outcome.kind) {
    case 'connected':
      return {
        tone: 'ok',
        title: 'Your Kroger account is connected',
        message: `${capital(app)} can now use your Kroger account. You can close this window.`,
      };
    case 'pending':
      return {
        tone: 'wait',
        title: `One more step: finish in ${app}`,
        message: `You signed in at Kroger. To finish connecting, copy this code and paste it into ${app}, where it asks for a connect code:`,
        notes: [
          `The code works once, for the next ${PENDING_CONNECTION_TTL_SECONDS / 60} minutes, and only for the ${app} account that started this connection.`,
          `Paste it into ${app} yourself. Never send it to anyone: whoever uses it could see your Kroger account.`,
        ],
      };
    case 'cancelled':
      return {
        tone: 'error',
        title: 'Not connected',
        message: `${describeProviderError('access_denied')} If that was a mistake, ${lower(again)}`,
      };
    case 'provider-error':
      return {
        tone: 'error',
        title: 'Not connected',
        message: `${describeProviderError(outcome.providerError ?? '')} ${again}`,
      };
    case 'attempt-invalid':
      return {
        tone: 'error',
        title: 'This sign-in has expired or was already used',
        message: `Each sign-in can finish only once, within 10 minutes. ${NOTHING_SAVED} ${again}`,
      };
    case 'wrong-browser':
      return {
        tone: 'error',
        title: 'This sign-in started in another browser',
        message: `For your safety, a sign-in must finish in the browser where it started, with cookies allowed. This browser does not have that sign-in's cookie (a different browser, or cookies blocked). ${NOTHING_SAVED}`,
        notes: ['Start again in this browser, with cookies allowed for this site.'],
      };
    case 'malformed':
      return {
        tone: 'error',
        title: 'This address is incomplete',
        message: `The address is missing information, or it is malformed or too long. ${NOTHING_SAVED} ${again}`,
      };
    case 'issuer-mismatch':
      return {
        tone: 'error',
        title: 'Not connected',
        message: `The sign-in response did not come from Kroger's sign-in service, so it was refused. ${NOTHING_SAVED} ${again}`,
      };
    case 'code-refused':
      return {
        tone: 'error',
        title: 'Not connected',
        message: `Kroger no longer accepts this sign-in (it was already used, or took too long). ${NOTHING_SAVED} ${again}`,
      };
    case 'unavailable':
      return {
        tone: 'error',
        title: 'Kroger is not answering',
        message: `${NOTHING_SAVED} Please try again in a few minutes.`,
      };
    case 'bad-response':
      return {
        tone: 'error',
        title: 'Not connected',
        message: `Kroger gave an unexpected answer. ${NOTHING_SAVED} Please try again later.`,
      };
    case 'service-rejected':
      return {
        tone: 'error',
        title: 'Not connected',
        message: `Kroger did not accept this service, so nothing was saved. The service operator has to fix this; please try again later.`,
      };
    case 'storage-unavailable':
      // The token store (DynamoDB), the field key (KMS) or the client secret (Secrets Manager) could
      // not be used: nothing the person did, and often over in minutes.
      return {
        tone: 'error',
        title: 'Not connected',
        message: `This service cannot store connections at the moment. ${NOTHING_SAVED} Please try again in a few minutes.`,
      };
    case 'link-bound':
      return {
        tone: 'error',
        title: `Not saved: this connection is managed by ${app}`,
        message: `Your Kroger sign-in worked, but the broker already keeps a connection under the same id that was made through ${app}, and a sign-in from this page cannot replace it. Nothing was changed.`,
        notes: [`To reconnect this account, start from ${app}.`],
      };
    case 'public-off':
      return {
        tone: 'error',
        title: `Start from ${app}`,
        message: `Kroger accounts are connected here only through a link from ${app}. Nothing was started or saved.`,
        notes: [`Open ${app} and choose to connect your Kroger account there.`],
      };
    case 'invalid-link':
      return {
        tone: 'error',
        title: 'This connect link cannot be used',
        message: `It has expired or was already used: each link works once, for a short time. Nothing was connected.`,
        notes: [`Go back to ${app} and start connecting again to get a new link.`],
      };
    case 'return-to-refused':
      return {
        tone: 'error',
        title: 'This sign-in address is not allowed',
        message: `It asks to send you afterwards to a page this service may not send you to. Nothing was started or saved.`,
        notes: [`Go back to ${app} and start again from there.`],
      };
    case 'nothing':
      return {
        tone: 'error',
        title: 'Nothing to show here',
        message: `This page shows the result of a Kroger sign-in, and this browser has none (a result is kept for ${RESULT_COOKIE_MAX_AGE_SECONDS / 60} minutes).`,
        notes: [`If you were connecting your Kroger account, start again from ${app}.`],
      };
    case 'internal':
      return {
        tone: 'error',
        title: 'Something went wrong',
        message: `${NOTHING_SAVED} Please try again later.`,
      };
  }
}

/** Kinds after which starting the sign-in again from this page would only repeat the refusal. */
const NO_RESTART: ReadonlySet<ResultKind> = new Set(['connected', 'pending', 'link-bound', 'public-off', 'nothing']);

/**
 * The status and content of the page for `outcome`. The one link it offers, if any: "Return to
 * <app>" for a sign-in with an allow-listed return URL, else "Start again" at /login for a public
 * sign-in when public sign-in is on. A connect link cannot be restarted (it was used), so a failed
 * link sign-in without a return URL says to start again from the app.
 */
export function renderOutcome(outcome: Outcome, context: PageContext): { status: number; page: PageContent } {
  const app = context.appName;
  const returnTo =
    outcome.returnTo && isAllowedTarget(outcome.returnTo, context.returnToAllowlist) ? outcome.returnTo : undefined;
  let action: PageContent['action'];
  // A pending page offers no way back: the way back must carry the code, and then it is a redirect.
  if (returnTo && outcome.kind !== 'pending') {
    action = { href: returnTo, label: `Return to ${app}` };
  } else if (outcome.via === 'public' && context.publicLogin && !NO_RESTART.has(outcome.kind)) {
    action = { href: context.loginUrl, label: 'Start again' };
  }
  const text = words(outcome, app, action !== undefined);
  return {
    status: STATUS[outcome.kind],
    page: {
      ...text,
      code: outcome.kind === 'pending' ? outcome.connectCode : undefined,
      action,
      brand: app === DEFAULT_APP_NAME ? 'Kroger account connection' : `${app} · Kroger account connection`,
      footer: `This service connects your Kroger account to ${app}. It never asks for your Kroger password: you enter that only on Kroger's own sign-in page.`,
    },
  };
}

function isCodeShaped(code: string | undefined): code is string {
  return code !== undefined && code.length === CONNECT_CODE_LENGTH && /^[A-Za-z0-9_-]+$/.test(code);
}

function capital(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function lower(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

const MAX_RESULT_COOKIE = 2048;

/** The result cookie's value for `outcome`: base64url JSON of short keys. */
export function encodeOutcome(outcome: Outcome): string {
  const compact = {
    k: outcome.kind,
    v: outcome.via === 'link' ? 'l' : 'p',
    ...(outcome.providerError ? { p: outcome.providerError } : {}),
    ...(outcome.connectCode ? { c: outcome.connectCode } : {}),
    ...(outcome.returnTo ? { r: outcome.returnTo } : {}),
  };
  return Buffer.from(JSON.stringify(compact), 'utf8').toString('base64url');
}

/**
 * Reads a result cookie; undefined unless every field has the shape the callback writes. A
 * provider error only selects words from a fixed table; a return URL is checked against the
 * allow-list when the page is rendered.
 */
export function decodeOutcome(value: string | undefined): Outcome | undefined {
  if (!value || value.length > MAX_RESULT_COOKIE || !/^[A-Za-z0-9_-]+$/.test(value)) return undefined;
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const { k, v, p, c, r } = raw;
  if (!(RESULT_KINDS as readonly unknown[]).includes(k) || (v !== 'l' && v !== 'p')) return undefined;
  if (c !== undefined && !(typeof c === 'string' && isCodeShaped(c))) return undefined;
  // A pending outcome without its code would be a page with nothing to copy.
  if (k === 'pending' && c === undefined) return undefined;
  if (r !== undefined && typeof r !== 'string') return undefined;
  return {
    kind: k as ResultKind,
    via: v === 'l' ? 'link' : 'public',
    // Only ever a key into describeProviderError's table (unknown values get its generic words).
    providerError: typeof p === 'string' && /^[a-z_]{1,64}$/.test(p) ? p : undefined,
    connectCode: c as string | undefined,
    returnTo: r as string | undefined,
  };
}
