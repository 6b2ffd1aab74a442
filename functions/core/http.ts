/**
 * HTTP results for API Gateway HTTP API (payload 2.0): small HTML pages and redirects, all with the
 * same security headers. Every dynamic string is HTML-escaped here, in one place.
 */
import { createHash } from 'node:crypto';

/** The subset of API Gateway's structured result the handlers return. */
export interface HttpResult {
  statusCode: number;
  headers: Record<string, string>;
  /** `Set-Cookie` values; API Gateway turns each into its own header. */
  cookies?: string[];
  body: string;
}

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`=]/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE =
  'body{margin:0;padding:3rem 1rem;background:#f3f4f6;color:#1f2933;' +
  'font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}' +
  'main{max-width:34rem;margin:0 auto;background:#fff;border-radius:12px;border-top:6px solid #6b7280;' +
  'box-shadow:0 1px 3px rgba(0,0,0,.12),0 8px 24px rgba(0,0,0,.06);padding:1.75rem 2rem 1.5rem}' +
  'main.ok{border-top-color:#15803d}main.wait{border-top-color:#1d4ed8}main.error{border-top-color:#b91c1c}' +
  'p.brand{margin:0 0 1.25rem;color:#52606d;font-size:.85rem;letter-spacing:.02em;text-transform:uppercase}' +
  'h1{font-size:1.45rem;line-height:1.3;margin:0 0 .75rem}p{margin:0 0 1rem}' +
  'p.detail,p.note{color:#52606d;font-size:.9rem}' +
  'p.code{font:600 1.1rem/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef2ff;' +
  'border:1px solid #c7d2fe;border-radius:8px;padding:.8rem 1rem;word-break:break-all;user-select:all}' +
  'a.action{display:inline-block;margin:.25rem 0 1rem;background:#1d4ed8;color:#fff;text-decoration:none;' +
  'font-weight:600;padding:.6rem 1.2rem;border-radius:8px}a.action:focus,a.action:hover{background:#1e40af}' +
  'footer{margin-top:1rem;border-top:1px solid #e4e7eb;padding-top:.75rem;color:#7b8794;font-size:.8rem}';
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

/**
 * Headers on every response: nothing cached (a page after a code exchange must not be replayed from
 * cache), no Referer leaking the callback URL (RFC 9700 section 4.2.4), no sniffing, no framing,
 * and a CSP that allows only the one inline stylesheet, by hash.
 */
export function securityHeaders(): Record<string, string> {
  return {
    'cache-control': 'no-store',
    pragma: 'no-cache',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'content-security-policy': `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  };
}

/** What a page shows: text only, escaped when rendered. */
export interface PageContent {
  readonly title: string;
  readonly message: string;
  /** A quieter line under the message (for example what the provider said). */
  readonly detail?: string;
  /** A value the person must copy (a connect code), shown large and selectable. */
  readonly code?: string;
  /** Lines under the code or the message: what to do next, what not to do. */
  readonly notes?: readonly string[];
  /** One link as a button: "Start again", "Return to ...". `href` must be checked by the caller. */
  readonly action?: { readonly href: string; readonly label: string };
  /** The line above the title saying whose page this is. */
  readonly brand?: string;
  /** Colour of the page's top edge: done, waiting for a step, or failed. */
  readonly tone?: 'ok' | 'wait' | 'error';
  /** The small print at the bottom. */
  readonly footer?: string;
}

/** A complete small HTML page. Every string of `page` is text, escaped here. */
export function htmlPage(statusCode: number, page: PageContent, cookies?: string[]): HttpResult {
  const paragraph = (cls: string, text: string | undefined) =>
    text ? `<p${cls ? ` class="${cls}"` : ''}>${escapeHtml(text)}</p>` : '';
  const action = page.action
    ? `<p><a class="action" href="${escapeHtml(page.action.href)}">${escapeHtml(page.action.label)}</a></p>`
    : '';
  const body =
    '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    `<title>${escapeHtml(page.title)}</title><style>${STYLE}</style></head>` +
    `<body><main${page.tone ? ` class="${page.tone}"` : ''}>${paragraph('brand', page.brand)}` +
    `<h1>${escapeHtml(page.title)}</h1>${paragraph('', page.message)}${paragraph('code', page.code)}` +
    `${(page.notes ?? []).map((note) => paragraph('note', note)).join('')}${paragraph('detail', page.detail)}` +
    `${action}${page.footer ? `<footer>${escapeHtml(page.footer)}</footer>` : ''}</main></body></html>`;
  return {
    statusCode,
    headers: { ...securityHeaders(), 'content-type': 'text/html; charset=utf-8' },
    ...(cookies && cookies.length > 0 ? { cookies } : {}),
    body,
  };
}

/**
 * A redirect (302 unless told otherwise; 303 "See Other" for the callback's hop to its clean result
 * page) to `location`, already validated by the caller, with the same security headers.
 */
export function redirect(location: string, cookies?: string[], statusCode: 302 | 303 = 302): HttpResult {
  return {
    statusCode,
    headers: { ...securityHeaders(), 'content-type': 'text/html; charset=utf-8', location },
    ...(cookies && cookies.length > 0 ? { cookies } : {}),
    body: '',
  };
}

/**
 * A `Set-Cookie` value for the login's cookies (the browser binding, the ledger of live logins, the
 * callback's result): HttpOnly, SameSite=Lax (the callback is a top-level cross-site GET
 * navigation, which Lax allows), scoped to one path, and Secure whenever the broker is served over
 * https.
 */
export function bindingCookie(
  name: string,
  value: string,
  options: { path: string; secure: boolean; maxAgeSeconds: number },
): string {
  const parts = [
    `${name}=${value}`,
    `Path=${options.path}`,
    `Max-Age=${options.maxAgeSeconds}`,
    'HttpOnly',
    'SameSite=Lax',
  ];
  if (options.secure) parts.push('Secure');
  return parts.join('; ');
}

/** The longest `Retry-After` the broker passes on: a provider asking for more is not believed. */
export const MAX_RETRY_AFTER_SECONDS = 3600;

/**
 * A `Retry-After` header (delay-seconds or an HTTP-date) in whole seconds from `nowMs`, at most
 * {@link MAX_RETRY_AFTER_SECONDS}; undefined when absent or malformed.
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  // delay-seconds, or an IMF-fixdate ("Fri, 27 Nov 2026 12:00:30 GMT"): a weekday name first.
  const seconds = /^\d{1,10}$/.test(text)
    ? Number(text)
    : /^[A-Za-z]{3}, /.test(text)
      ? Math.ceil((Date.parse(text) - nowMs) / 1000)
      : Number.NaN;
  if (!Number.isFinite(seconds)) return undefined;
  return Math.min(Math.max(seconds, 0), MAX_RETRY_AFTER_SECONDS);
}
