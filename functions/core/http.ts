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
  'body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1b1b1b}' +
  'h1{font-size:1.5rem}p.detail{color:#555;font-size:.9rem}';
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

/** A complete small HTML page. `title`, `message` and `detail` are text, escaped here. */
export function htmlPage(
  statusCode: number,
  page: { title: string; message: string; detail?: string },
  cookies?: string[],
): HttpResult {
  const detail = page.detail ? `<p class="detail">${escapeHtml(page.detail)}</p>` : '';
  const body =
    '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    `<title>${escapeHtml(page.title)}</title><style>${STYLE}</style></head>` +
    `<body><main><h1>${escapeHtml(page.title)}</h1><p>${escapeHtml(page.message)}</p>${detail}</main></body></html>`;
  return {
    statusCode,
    headers: { ...securityHeaders(), 'content-type': 'text/html; charset=utf-8' },
    ...(cookies && cookies.length > 0 ? { cookies } : {}),
    body,
  };
}

/** A 302 to `location` (already validated by the caller) with the same security headers. */
export function redirect(location: string, cookies?: string[]): HttpResult {
  return {
    statusCode: 302,
    headers: { ...securityHeaders(), 'content-type': 'text/html; charset=utf-8', location },
    ...(cookies && cookies.length > 0 ? { cookies } : {}),
    body: '',
  };
}

/**
 * A `Set-Cookie` value for the browser-binding cookie: HttpOnly, SameSite=Lax (the callback is a
 * top-level cross-site GET navigation, which Lax allows), scoped to the callback path, and Secure
 * whenever the broker is served over https.
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
