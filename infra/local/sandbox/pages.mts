/**
 * The sandbox's own sign-in and consent pages: plain HTML, every value escaped, no external assets.
 * oidc-provider's devInteractions are for development only, and tests (headless.ts) and people
 * submit these forms exactly as a browser would.
 */

/** What each Kroger scope lets the client do, shown on the consent page. */
const SCOPE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  'product.compact': 'Read product information',
  'cart.basic:write': 'Add items to your cart',
  'profile.compact': 'Read your Kroger profile id',
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 26rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.4rem; } .note { color: #666; font-size: .9rem; } .error { color: #b00020; }
input { width: 100%; padding: .5rem; margin: .5rem 0 1rem; box-sizing: border-box; }
button { padding: .5rem 1.2rem; margin-right: .5rem; }
</style>
</head>
<body>
<p class="note">Kroger sandbox (local test provider)</p>
${body}
</body>
</html>
`;
}

/** The sign-in page: a login (used as the account id as is), no password. */
export function signInPage(opts: { action: string; clientId: string; error?: string }): string {
  const error = opts.error ? `<p class="error">${escapeHtml(opts.error)}</p>` : '';
  return page(
    'Sign in',
    `<h1>Sign in</h1>
<p><strong>${escapeHtml(opts.clientId)}</strong> wants to access your Kroger account.</p>
${error}<form method="post" action="${escapeHtml(opts.action)}">
<label for="login">Kroger profile id or email</label>
<input id="login" name="login" autocomplete="username" required autofocus>
<button type="submit">Sign in</button>
</form>`,
  );
}

/** The consent page: lists the requested scopes; Allow or Cancel. */
export function consentPage(opts: {
  action: string;
  clientId: string;
  accountId: string;
  scopes: readonly string[];
}): string {
  const items = opts.scopes
    .map((s) => `<li><code>${escapeHtml(s)}</code> ${escapeHtml(SCOPE_DESCRIPTIONS[s] ?? '')}</li>`)
    .join('\n');
  return page(
    'Allow access',
    `<h1>Allow access</h1>
<p>Signed in as <strong>${escapeHtml(opts.accountId)}</strong>.</p>
<p><strong>${escapeHtml(opts.clientId)}</strong> asks to:</p>
<ul>
${items}
</ul>
<form method="post" action="${escapeHtml(opts.action)}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Cancel</button>
</form>`,
  );
}

/** The page oidc-provider renders for errors it cannot redirect to the client (bad client, bad redirect_uri). */
export function errorPage(error: string, description: string | undefined): string {
  const detail = description ? `<p>${escapeHtml(description)}</p>` : '';
  return page('Error', `<h1>Error: ${escapeHtml(error)}</h1>\n${detail}`);
}
