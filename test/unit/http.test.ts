import { bindingCookie, escapeHtml, htmlPage, redirect } from '../../functions/core/http';

describe('Function: htmlPage', () => {
  it('escapes every dynamic string, so provider text cannot inject markup', () => {
    const page = htmlPage(400, { title: '<b>t</b>', message: '"><script>alert(1)</script>', detail: "' onload='x" });
    expect(page.body).not.toMatch(/<script>|<b>|' onload/);
    expect(page.body).toContain('&#60;script&#62;');
  });

  it('sends the security headers RFC 9700 and browsers need on every page', () => {
    const { headers, statusCode } = htmlPage(200, { title: 't', message: 'm' });
    expect(statusCode).toBe(200);
    expect(headers['content-type']).toBe('text/html; charset=utf-8');
    expect(headers['cache-control']).toBe('no-store');
    expect(headers['referrer-policy']).toBe('no-referrer');
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(headers['content-security-policy']).not.toMatch(/unsafe-inline/);
    expect(headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
  });
});

describe('Function: redirect', () => {
  it('is a 302 with the same headers and cookies', () => {
    const result = redirect('https://x.test/a', ['c=1']);
    expect(result.statusCode).toBe(302);
    expect(result.headers.location).toBe('https://x.test/a');
    expect(result.headers['referrer-policy']).toBe('no-referrer');
    expect(result.cookies).toEqual(['c=1']);
  });
});

describe('Function: bindingCookie', () => {
  it('is HttpOnly, SameSite=Lax and scoped to the callback path', () => {
    const cookie = bindingCookie('kb', 'v', { path: '/callback', secure: false, maxAgeSeconds: 600 });
    expect(cookie).toBe('kb=v; Path=/callback; Max-Age=600; HttpOnly; SameSite=Lax');
  });
  it('adds Secure when served over https', () => {
    expect(bindingCookie('kb', 'v', { path: '/callback', secure: true, maxAgeSeconds: 600 })).toMatch(/; Secure$/);
  });
});

describe('Function: escapeHtml', () => {
  it('escapes quotes and angle brackets', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&`)).toBe(
      '&#60;a href&#61;&#34;x&#34; onclick&#61;&#39;y&#39;&#62;&#38;',
    );
  });
});
