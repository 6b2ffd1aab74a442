import { createHash } from 'node:crypto';
import {
  bindingCookie,
  escapeHtml,
  htmlPage,
  MAX_RETRY_AFTER_SECONDS,
  parseRetryAfter,
  redirect,
  securityHeaders,
} from '../../functions/core/http';

/** The sha256 CSP source of the page's one inline stylesheet. */
function styleHash(body: string): string {
  const style = /<style>([^<]*)<\/style>/.exec(body)?.[1] ?? '';
  return `'sha256-${createHash('sha256').update(style).digest('base64')}'`;
}

describe('Function: securityHeaders', () => {
  it('is exactly the headers RFC 9700 and browsers need: no cache, no referrer, no sniffing, no framing, a strict CSP', () => {
    const csp = securityHeaders()['content-security-policy'];
    expect(securityHeaders()).toEqual({
      'cache-control': 'no-store',
      pragma: 'no-cache',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'content-security-policy': csp,
    });
    expect(csp).toBe(
      `default-src 'none'; style-src ${styleHash(htmlPage(200, { title: 't', message: 'm' }).body)}; ` +
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
  });
});

describe('Function: htmlPage', () => {
  it('escapes every dynamic string, so provider text cannot inject markup', () => {
    const page = htmlPage(400, { title: '<b>t</b>', message: '"><script>alert(1)</script>', detail: "' onload='x" });
    expect(page.body).not.toMatch(/<script>|<b>|' onload/);
    expect(page.body).toContain('<title>&#60;b&#62;t&#60;/b&#62;</title>');
    expect(page.body).toContain('<h1>&#60;b&#62;t&#60;/b&#62;</h1>');
    expect(page.body).toContain('<p>&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;</p>');
    expect(page.body).toContain('<p class="detail">&#39; onload&#61;&#39;x</p>');
  });

  it('is a complete small HTML document whose only style the CSP allows', () => {
    const page = htmlPage(200, { title: 'Connected', message: 'Done.' });
    expect(page.body).toMatch(
      /^<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>Connected<\/title><style>[^<]+<\/style><\/head><body><main><h1>Connected<\/h1><p>Done\.<\/p><\/main><\/body><\/html>$/,
    );
    expect(page.headers['content-security-policy']).toContain(`style-src ${styleHash(page.body)};`);
  });

  it('sends the security headers and the HTML content type on every page', () => {
    const { headers, statusCode } = htmlPage(403, { title: 't', message: 'm' });
    expect(statusCode).toBe(403);
    expect(headers).toEqual({ ...securityHeaders(), 'content-type': 'text/html; charset=utf-8' });
  });

  it('sets the cookies it is given, and has no cookies entry otherwise', () => {
    expect(htmlPage(200, { title: 't', message: 'm' }, ['a=1']).cookies).toEqual(['a=1']);
    expect('cookies' in htmlPage(200, { title: 't', message: 'm' }, [])).toBe(false);
    expect('cookies' in htmlPage(200, { title: 't', message: 'm' })).toBe(false);
  });
});

describe('Function: redirect', () => {
  it('is a 302 to the location with the security headers, an empty body and the cookies', () => {
    expect(redirect('https://x.test/a', ['c=1'])).toEqual({
      statusCode: 302,
      headers: { ...securityHeaders(), 'content-type': 'text/html; charset=utf-8', location: 'https://x.test/a' },
      cookies: ['c=1'],
      body: '',
    });
  });

  it('has no cookies entry without cookies', () => {
    expect('cookies' in redirect('https://x.test/a')).toBe(false);
    expect('cookies' in redirect('https://x.test/a', [])).toBe(false);
  });
});

describe('Function: bindingCookie', () => {
  it('is HttpOnly, SameSite=Lax and scoped to the callback path', () => {
    const cookie = bindingCookie('kb', 'v', { path: '/callback', secure: false, maxAgeSeconds: 600 });
    expect(cookie).toBe('kb=v; Path=/callback; Max-Age=600; HttpOnly; SameSite=Lax');
  });
  it('adds Secure when served over https', () => {
    expect(bindingCookie('kb', 'v', { path: '/p', secure: true, maxAgeSeconds: 0 })).toBe(
      'kb=v; Path=/p; Max-Age=0; HttpOnly; SameSite=Lax; Secure',
    );
  });
});

describe('Function: escapeHtml', () => {
  it('escapes quotes, backticks, equals signs, ampersands and angle brackets', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&\`z\``)).toBe(
      '&#60;a href&#61;&#34;x&#34; onclick&#61;&#39;y&#39;&#62;&#38;&#96;z&#96;',
    );
  });
  it('leaves other text alone', () => {
    expect(escapeHtml('plain text, 100% (ok)')).toBe('plain text, 100% (ok)');
  });
});

describe('Function: parseRetryAfter', () => {
  const NOW = Date.parse('2026-11-27T12:00:00Z');

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120);
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0);
  });

  it('reads an HTTP-date as the seconds left until it, and a date in the past as 0', () => {
    expect(parseRetryAfter('Fri, 27 Nov 2026 12:00:30 GMT', NOW)).toBe(30);
    expect(parseRetryAfter('Fri, 27 Nov 2026 11:00:00 GMT', NOW)).toBe(0);
  });

  it('does not believe more than an hour', () => {
    expect(parseRetryAfter('999999', NOW)).toBe(MAX_RETRY_AFTER_SECONDS);
  });

  it('ignores a missing or malformed value', () => {
    expect(parseRetryAfter(null, NOW)).toBeUndefined();
    expect(parseRetryAfter('', NOW)).toBeUndefined();
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    expect(parseRetryAfter('-5', NOW)).toBeUndefined();
  });
});
