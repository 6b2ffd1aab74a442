/**
 * A browser stand-in for tests: walks the sandbox's sign-in and consent pages with fetch, a tiny
 * cookie jar and manual redirects, submitting the forms the way a browser would.
 */

/** Options of {@link completeAuthorization}. */
export interface CompleteAuthorizationOptions {
  /** What the user types as "Kroger profile id or email"; the sandbox uses it as the profile id. */
  readonly login: string;
  /**
   * Whether the user clicks Allow on the consent page.
   * @default true - false clicks Cancel, which redirects with `error=access_denied`
   */
  readonly approve?: boolean;
}

const MAX_STEPS = 20;

/**
 * Follows an authorization request through sign-in and consent until the sandbox redirects to
 * another origin (the client's redirect_uri), and returns that URL without requesting it: with
 * `code`, `state` and `iss`, or with `error` and `state`.
 * @throws Error when the sandbox answers with an error page or a page without a known form.
 */
export async function completeAuthorization(authorizeUrl: string, opts: CompleteAuthorizationOptions): Promise<URL> {
  const sandboxOrigin = new URL(authorizeUrl).origin;
  const jar = new CookieJar();
  let request: { url: URL; form?: URLSearchParams } = { url: new URL(authorizeUrl) };

  for (let step = 0; step < MAX_STEPS; step += 1) {
    const { url, form } = request;
    const cookie = jar.header(url);
    const res = await fetch(url, {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: {
        ...(cookie ? { cookie } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form?.toString(),
      signal: AbortSignal.timeout(10_000),
    });
    jar.store(url, res.headers.getSetCookie());

    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      const next = new URL(location, url);
      if (next.origin !== sandboxOrigin) return next;
      request = { url: next };
      continue;
    }

    const html = await res.text();
    if (res.status !== 200) {
      throw new Error(`sandbox answered ${res.status} at ${url.pathname}: ${textOf(html).slice(0, 300)}`);
    }
    request = submit(parseForm(html, url), opts, url);
  }
  throw new Error(`authorization did not reach the redirect_uri within ${MAX_STEPS} steps`);
}

interface Form {
  readonly action: URL;
  /** Named inputs with their current values. */
  readonly inputs: Map<string, string>;
  /** Submit buttons: name and value. */
  readonly buttons: ReadonlyArray<{ name: string; value: string }>;
}

/** Fills the sign-in form or clicks a consent button, as the user described by `opts` would. */
function submit(form: Form, opts: CompleteAuthorizationOptions, pageUrl: URL): { url: URL; form: URLSearchParams } {
  const fields = new URLSearchParams([...form.inputs]);
  if (form.inputs.has('login')) {
    fields.set('login', opts.login);
  } else {
    const decision = opts.approve === false ? 'deny' : 'allow';
    const button = form.buttons.find((b) => b.name === 'decision' && b.value === decision);
    if (!button) throw new Error(`no "${decision}" button on the page at ${pageUrl.pathname}`);
    fields.append(button.name, button.value);
  }
  return { url: form.action, form: fields };
}

/** Reads the first POST form of a page: enough HTML parsing for the sandbox's own pages. */
function parseForm(html: string, pageUrl: URL): Form {
  const match = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!match) throw new Error(`no form on the page at ${pageUrl.pathname}: ${textOf(html).slice(0, 300)}`);
  const formAttrs = attributes(match[1]);
  if ((formAttrs.get('method') ?? 'get').toLowerCase() !== 'post') {
    throw new Error(`expected a POST form at ${pageUrl.pathname}`);
  }
  const inputs = new Map<string, string>();
  const buttons: Array<{ name: string; value: string }> = [];
  for (const [, tag, attrText] of match[2].matchAll(/<(input|button)\b([^>]*)>/gi)) {
    const attrs = attributes(attrText);
    const name = attrs.get('name');
    const type = (attrs.get('type') ?? (tag.toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase();
    if (type === 'submit') {
      if (name) buttons.push({ name, value: attrs.get('value') ?? '' });
    } else if (name) {
      inputs.set(name, attrs.get('value') ?? '');
    }
  }
  return { action: new URL(formAttrs.get('action') ?? pageUrl.href, pageUrl), inputs, buttons };
}

function attributes(text: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const [, name, dq, sq, bare] of text.matchAll(
    /([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g,
  )) {
    attrs.set(name.toLowerCase(), decodeEntities(dq ?? sq ?? bare ?? ''));
  }
  return attrs;
}

function decodeEntities(text: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (entity, code: string) => {
    if (code[0] !== '#') return named[code.toLowerCase()] ?? entity;
    return String.fromCodePoint(code[1].toLowerCase() === 'x' ? parseInt(code.slice(2), 16) : Number(code.slice(1)));
  });
}

function textOf(html: string): string {
  return decodeEntities(html.replace(/<style[\s\S]*?<\/style>/gi, '').replace(/<[^>]+>/g, ' '))
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * Host-only cookies for the one origin we talk to, with path matching and deletion by expiry,
 * which is what oidc-provider's interaction and session cookies rely on.
 * @see https://www.rfc-editor.org/rfc/rfc6265#section-5.1.4 (path match)
 */
class CookieJar {
  private readonly cookies = new Map<string, { name: string; value: string; path: string }>();

  store(requestUrl: URL, setCookies: readonly string[]): void {
    for (const header of setCookies) {
      const [pair, ...attrParts] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = requestUrl.pathname.replace(/\/[^/]*$/, '') || '/';
      let expired = false;
      for (const part of attrParts) {
        const [key, ...rest] = part.split('=');
        const attrValue = rest.join('=').trim();
        switch (key.trim().toLowerCase()) {
          case 'path':
            if (attrValue.startsWith('/')) path = attrValue;
            break;
          case 'max-age':
            expired ||= Number(attrValue) <= 0;
            break;
          case 'expires':
            expired ||= Date.parse(attrValue) <= Date.now();
            break;
        }
      }
      const key = `${name};${path}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path });
    }
  }

  header(url: URL): string {
    return [...this.cookies.values()]
      .filter((c) => pathMatches(url.pathname, c.path))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  return (
    requestPath === cookiePath ||
    (requestPath.startsWith(cookiePath) && (cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/'))
  );
}
