/**
 * The sandbox authorization server: oidc-provider configured to look like Kroger's OAuth2 API,
 * plus the routes oidc-provider does not have (profile, sign-in and consent pages, test controls).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { IncomingMessage, RequestListener } from 'node:http';

import Provider, { type Interaction, type InteractionResult, type KoaContext } from 'oidc-provider';

import { consentPage, errorPage, signInPage } from './pages.mjs';
import {
  CANARY_MODES,
  GRANT_REFUSALS,
  REFUSAL_GRANT_TYPES,
  REFUSAL_MODES,
  sendRefusal,
  type GrantRefusal,
  type RefusalContext,
  type RefusalGrantType,
  type RefusalMode,
} from './refusals.mjs';

/** Kroger's paths; the issuer is the bare origin. */
export const OAUTH2_PATH = '/v1/connect/oauth2';
export const TOKEN_PATH = `${OAUTH2_PATH}/token`;
export const PROFILE_PATH = '/v1/identity/profile';
export const KROGER_SCOPES = ['product.compact', 'cart.basic:write', 'profile.compact'] as const;

const INTERACTION_PATH = /^\/interaction\/([\w-]+)(?:\/(login|confirm))?$/;
const MAX_FORM_BYTES = 8 * 1024;
const MAX_LOGIN_LENGTH = 200;

/** Settings of one sandbox instance. */
export interface SandboxSettings {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUris: readonly string[];
  readonly accessTokenTtlSeconds: number;
}

type FailMode = 'none' | '503' | 'hang';

/** A refusal armed by `POST /__sandbox/refuse-token`. */
interface Refusal {
  mode: RefusalMode | 'none';
  remaining: number;
  grantType: RefusalGrantType;
  canary: string;
}

const NO_REFUSAL: Refusal = { mode: 'none', remaining: 0, grantType: 'any', canary: '' };

/** What the test-control endpoints change; read by the token and grant middleware. */
interface Controls {
  counts: { authorizationCode: number; refreshToken: number };
  fail: { mode: FailMode; remaining: number };
  refuse: Refusal;
  omitRefreshToken: boolean;
  /** Grants created on the consent page, by account: what revokeAccount revokes. */
  grantsByAccount: Map<string, Set<string>>;
  /**
   * The grant of every refresh token issued, kept after the token is revoked: the only way to
   * tell that a refresh token oidc-provider no longer knows belonged to a dead grant.
   */
  refreshTokenGrants: Map<string, string>;
  /** Grants revoked with a refusal other than `invalid-grant`, and that refusal. */
  deadGrants: Map<string, GrantRefusal>;
}

/** Builds the provider and returns the Node request listener that serves everything. */
export function createSandbox(settings: SandboxSettings): RequestListener {
  const controls: Controls = {
    counts: { authorizationCode: 0, refreshToken: 0 },
    fail: { mode: 'none', remaining: 0 },
    refuse: NO_REFUSAL,
    omitRefreshToken: false,
    grantsByAccount: new Map(),
    refreshTokenGrants: new Map(),
    deadGrants: new Map(),
  };

  const provider = new Provider(settings.issuer, {
    clients: [
      {
        client_id: settings.clientId,
        client_secret: settings.clientSecret,
        redirect_uris: [...settings.redirectUris],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    clientAuthMethods: ['client_secret_basic'],
    scopes: [...KROGER_SCOPES],
    responseTypes: ['code'],
    routes: {
      authorization: `${OAUTH2_PATH}/authorize`,
      token: TOKEN_PATH,
      revocation: `${OAUTH2_PATH}/revoke`,
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
    },
    // PKCE is optional like at Kroger, but a sent code_challenge is always verified at /token.
    pkce: { required: () => false },
    // Kroger issues a refresh token without offline_access.
    issueRefreshToken: async () => true,
    // Rotation on: reuse of a used refresh token revokes the grant (the strictest provider behaviour).
    // Off only while a test asks for responses without a new refresh token.
    rotateRefreshToken: () => !controls.omitRefreshToken,
    ttl: {
      AccessToken: settings.accessTokenTtlSeconds,
      AuthorizationCode: 60,
      RefreshToken: 30 * 24 * 60 * 60,
      Grant: 30 * 24 * 60 * 60,
      Interaction: 60 * 60,
      Session: 24 * 60 * 60,
    },
    findAccount: async (_ctx: unknown, accountId: string) => ({
      accountId,
      claims: async () => ({ sub: accountId }),
    }),
    interactions: { url: async (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    // An ephemeral key: no ID tokens are issued, but it keeps oidc-provider off its dev keystore.
    jwks: {
      keys: [
        { ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), use: 'sig' },
      ],
    },
    clientBasedCORS: () => false,
    renderError: async (ctx: KoaContext, out: { error: string; error_description?: string }) => {
      ctx.type = 'html';
      ctx.body = errorPage(out.error, out.error_description);
    },
  });

  provider.on('server_error', (_ctx, err) => log(`server_error: ${(err as Error).message}`));

  provider.use(async (ctx, next) => {
    if (ctx.path.startsWith('/__sandbox/')) return controlRoute(ctx, controls, provider);
    if (ctx.path === PROFILE_PATH) return profileRoute(ctx, provider);
    const interaction = INTERACTION_PATH.exec(ctx.path);
    if (interaction) return interactionRoute(ctx, provider, controls, interaction[2]);
    if (ctx.path === TOKEN_PATH && ctx.method === 'POST') return tokenRoute(ctx, settings, provider, controls, next);
    return next();
  });

  return provider.callback();
}

/**
 * Counts token requests, injects outages and refusals, strips the refresh token when asked to,
 * and answers a dead grant's refreshes in the shape revokeAccount chose.
 */
async function tokenRoute(
  ctx: KoaContext,
  settings: SandboxSettings,
  provider: Provider,
  controls: Controls,
  next: () => Promise<void>,
): Promise<void> {
  if (controls.fail.mode !== 'none') {
    const { mode } = controls.fail;
    controls.fail.remaining -= 1;
    if (controls.fail.remaining <= 0) controls.fail = { mode: 'none', remaining: 0 };
    // The body is read only to count the request; the provider never sees it.
    count(controls, new URLSearchParams(await readBody(ctx.req)).get('grant_type'));
    log(`token: injected ${mode}`);
    if (mode === '503') {
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable', error_description: 'sandbox: injected outage' };
      return;
    }
    // Never answer; wait for the client to give up so no request is left pending in the server.
    await new Promise((resolve) => ctx.res.once('close', resolve));
    ctx.respond = false;
    return;
  }

  if (controls.refuse.mode !== 'none') {
    const raw = await readBody(ctx.req);
    const grantType = new URLSearchParams(raw).get('grant_type');
    const refusal = controls.refuse;
    if (refusal.mode !== 'none' && (refusal.grantType === 'any' || refusal.grantType === grantType)) {
      refusal.remaining -= 1;
      if (refusal.remaining <= 0) controls.refuse = NO_REFUSAL;
      count(controls, grantType);
      log(`token: injected refusal ${refusal.mode}`);
      // Answered before oidc-provider sees the request, so no code or refresh token is used up.
      ctx.respond = false;
      await sendRefusal(ctx.res, refusal.mode, refusalContext(settings, refusal.canary));
      return;
    }
    // Not a request this refusal is for: oidc-provider reads an already-consumed body from request.body.
    ctx.request.body = raw;
  }

  try {
    await next();
  } finally {
    const grantType = ctx.oidc?.params?.grant_type;
    count(controls, typeof grantType === 'string' ? grantType : null);
    log(`token: ${String(grantType)} -> ${ctx.status}`);
  }
  const body = ctx.body as Record<string, unknown> | undefined;
  if (ctx.status === 200 && typeof body?.refresh_token === 'string') {
    const issued = await provider.RefreshToken.find(body.refresh_token);
    if (issued) controls.refreshTokenGrants.set(body.refresh_token, issued.grantId);
  }
  if (controls.omitRefreshToken && ctx.oidc?.params?.grant_type === 'refresh_token' && body?.refresh_token) {
    // Rotation is off in this mode, so the refresh token the client holds stays valid.
    delete body.refresh_token;
  }
  const refusal = deadGrantRefusal(ctx, controls);
  if (refusal !== undefined) {
    // Only oidc-provider's invalid_grant is reshaped, so a wrong client secret still gets invalid_client first.
    log(`token: dead grant answered ${refusal}`);
    ctx.respond = false;
    await sendRefusal(ctx.res, refusal, refusalContext(settings, ''));
  }
}

/** The refusal revokeAccount chose for the grant of the refresh token oidc-provider just refused. */
function deadGrantRefusal(ctx: KoaContext, controls: Controls): Exclude<GrantRefusal, 'invalid-grant'> | undefined {
  const presented = ctx.oidc?.params?.refresh_token;
  if (ctx.oidc?.params?.grant_type !== 'refresh_token' || typeof presented !== 'string') return undefined;
  if (ctx.status !== 400 || (ctx.body as { error?: unknown } | undefined)?.error !== 'invalid_grant') return undefined;
  const grantId = controls.refreshTokenGrants.get(presented);
  const refusal = grantId === undefined ? undefined : controls.deadGrants.get(grantId);
  return refusal === 'invalid-grant' ? undefined : refusal;
}

function refusalContext(settings: SandboxSettings, canary: string): RefusalContext {
  return { canary, issuer: settings.issuer, expiresIn: settings.accessTokenTtlSeconds };
}

function count(controls: Controls, grantType: string | null): void {
  if (grantType === 'authorization_code') controls.counts.authorizationCode += 1;
  if (grantType === 'refresh_token') controls.counts.refreshToken += 1;
}

/**
 * Kroger's profile endpoint: `{"data":{"id":"<profile id>"}}` for a token with `profile.compact`.
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1 (invalid_token, insufficient_scope)
 */
async function profileRoute(ctx: KoaContext, provider: Provider): Promise<void> {
  if (ctx.method !== 'GET') {
    ctx.status = 405;
    ctx.body = { error: 'method_not_allowed' };
    return;
  }
  const match = /^Bearer +([^\s]+)$/i.exec(ctx.get('authorization'));
  // find() also answers undefined for expired and revoked tokens.
  const token = match ? await provider.AccessToken.find(match[1]) : undefined;
  if (!token) {
    ctx.status = 401;
    ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
    ctx.body = { error: 'invalid_token', error_description: 'missing, unknown or expired access token' };
    return;
  }
  if (!token.scopes.has('profile.compact')) {
    ctx.status = 403;
    ctx.set('WWW-Authenticate', 'Bearer error="insufficient_scope", scope="profile.compact"');
    ctx.body = { error: 'insufficient_scope', error_description: 'the "profile.compact" scope is required' };
    return;
  }
  ctx.body = { data: { id: token.accountId } };
}

/** GET shows the page of the current prompt; POST .../login and .../confirm finish that prompt. */
async function interactionRoute(
  ctx: KoaContext,
  provider: Provider,
  controls: Controls,
  step: string | undefined,
): Promise<void> {
  // Throws SessionNotFound (rendered by renderError) when the interaction cookie is missing or stale.
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const clientId = String(details.params.client_id);
  const prompt = details.prompt.name;
  ctx.set('Cache-Control', 'no-store');

  if (ctx.method === 'GET' && step === undefined) {
    ctx.type = 'html';
    ctx.body =
      prompt === 'login'
        ? signInPage({ action: `/interaction/${details.uid}/login`, clientId })
        : consentPage({
            action: `/interaction/${details.uid}/confirm`,
            clientId,
            accountId: details.session?.accountId ?? '',
            scopes: requestedScopes(details),
          });
    return;
  }
  if (
    ctx.method !== 'POST' ||
    (step === 'login') !== (prompt === 'login') ||
    (step === 'confirm') !== (prompt === 'consent')
  ) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = errorPage('invalid_request', `this form does not answer the current "${prompt}" step`);
    return;
  }

  const form = new URLSearchParams(await readBody(ctx.req));
  let result: InteractionResult;
  if (step === 'login') {
    const login = (form.get('login') ?? '').trim();
    if (!login || login.length > MAX_LOGIN_LENGTH) {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = signInPage({
        action: `/interaction/${details.uid}/login`,
        clientId,
        error: `Enter a profile id or email of 1 to ${MAX_LOGIN_LENGTH} characters.`,
      });
      return;
    }
    // The login is the account id, so tests choose the profile id they get back.
    result = { login: { accountId: login } };
  } else if (form.get('decision') === 'allow') {
    result = { consent: { grantId: await saveGrant(provider, controls, details) } };
  } else {
    result = { error: 'access_denied', error_description: 'the user cancelled the authorization' };
  }
  log(`interaction: ${step} finished`);
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.redirect(returnTo);
}

/** The scopes the client asked for (only those the sandbox knows; oidc-provider ignores others). */
function requestedScopes(details: Interaction): string[] {
  const requested = String(details.params.scope ?? '').split(' ');
  return requested.filter((s) => (KROGER_SCOPES as readonly string[]).includes(s));
}

/** Grants what the consent prompt found missing and remembers the grant for revokeAccount. */
async function saveGrant(provider: Provider, controls: Controls, details: Interaction): Promise<string> {
  const accountId = details.session?.accountId;
  if (!accountId) throw new Error('consent without a signed-in account');
  const grant =
    (details.grantId ? await provider.Grant.find(details.grantId) : undefined) ??
    new provider.Grant({ accountId, clientId: String(details.params.client_id) });
  const missing = details.prompt.details.missingOIDCScope;
  if (Array.isArray(missing)) grant.addOIDCScope(missing.join(' '));
  const grantId = await grant.save();
  const grants = controls.grantsByAccount.get(accountId) ?? new Set<string>();
  controls.grantsByAccount.set(accountId, grants.add(grantId));
  return grantId;
}

/** Loopback-only test controls (the server binds loopback only). */
async function controlRoute(ctx: KoaContext, controls: Controls, provider: Provider): Promise<void> {
  const route = `${ctx.method} ${ctx.path}`;
  let input: Record<string, unknown> = {};
  if (ctx.method === 'POST') {
    try {
      input = JSON.parse((await readBody(ctx.req)) || '{}') as Record<string, unknown>;
    } catch {
      return badRequest(ctx, 'body must be JSON');
    }
  }

  switch (route) {
    case 'GET /__sandbox/stats':
      ctx.body = { ...controls.counts };
      return;
    case 'POST /__sandbox/stats/reset':
      controls.counts = { authorizationCode: 0, refreshToken: 0 };
      ctx.body = { ...controls.counts };
      return;
    case 'POST /__sandbox/fail-token': {
      const { mode, count } = input;
      if (mode !== 'none' && mode !== '503' && mode !== 'hang') {
        return badRequest(ctx, 'expected "mode" to be "none", "503" or "hang"');
      }
      if (count !== undefined && !(Number.isInteger(count) && (count as number) > 0)) {
        return badRequest(ctx, 'expected "count" to be a positive integer');
      }
      controls.fail = { mode, remaining: mode === 'none' ? 0 : ((count as number | undefined) ?? Infinity) };
      ctx.body = { mode, count: count ?? null };
      return;
    }
    case 'POST /__sandbox/rotation':
      if (typeof input.omitRefreshToken !== 'boolean') {
        return badRequest(ctx, 'expected "omitRefreshToken" to be a boolean');
      }
      controls.omitRefreshToken = input.omitRefreshToken;
      ctx.body = { omitRefreshToken: controls.omitRefreshToken };
      return;
    case 'POST /__sandbox/refuse-token':
      return refuseTokenControl(ctx, controls, input);
    case 'POST /__sandbox/revoke-account': {
      const { accountId, refusal = 'invalid-grant' } = input;
      if (typeof accountId !== 'string' || !accountId) {
        return badRequest(ctx, 'expected "accountId" to be a non-empty string');
      }
      if (!isOneOf(GRANT_REFUSALS, refusal)) {
        return badRequest(ctx, `expected "refusal" to be one of ${quoteAll(GRANT_REFUSALS)}`);
      }
      const grantIds = [...(controls.grantsByAccount.get(accountId) ?? [])];
      for (const grantId of grantIds) {
        if (refusal !== 'invalid-grant') controls.deadGrants.set(grantId, refusal);
        await Promise.all([
          provider.AccessToken.revokeByGrantId(grantId),
          provider.RefreshToken.revokeByGrantId(grantId),
          provider.AuthorizationCode.revokeByGrantId(grantId),
        ]);
        // The grant goes too, so a later sign-in in the same browser session asks for consent again.
        await (await provider.Grant.find(grantId))?.destroy();
      }
      controls.grantsByAccount.delete(accountId);
      log(`control: revoked ${grantIds.length} grant(s), refreshes answered ${refusal}`);
      ctx.body = { revokedGrants: grantIds.length, refusal };
      return;
    }
    default:
      ctx.status = 404;
      ctx.body = { error: 'not_found', error_description: `no sandbox control "${route}"` };
  }
}

/** `POST /__sandbox/refuse-token {"mode", "count"?, "grantType"?}`; see launch.ts `refuseToken`. */
function refuseTokenControl(ctx: KoaContext, controls: Controls, input: Record<string, unknown>): void {
  const { mode, count, grantType = 'any' } = input;
  if (mode !== 'none' && !isOneOf(REFUSAL_MODES, mode)) {
    return badRequest(ctx, `expected "mode" to be "none" or one of ${quoteAll(REFUSAL_MODES)}`);
  }
  if (count !== undefined && !(Number.isInteger(count) && (count as number) > 0)) {
    return badRequest(ctx, 'expected "count" to be a positive integer');
  }
  if (!isOneOf(REFUSAL_GRANT_TYPES, grantType)) {
    return badRequest(ctx, `expected "grantType" to be one of ${quoteAll(REFUSAL_GRANT_TYPES)}`);
  }
  if (mode === 'none') {
    controls.refuse = NO_REFUSAL;
    ctx.body = { mode, count: null, grantType: 'any', canary: null };
    return;
  }
  // 43 base64url characters: the size and alphabet of the tokens oidc-provider issues.
  const canary = randomBytes(32).toString('base64url');
  controls.refuse = { mode, remaining: (count as number | undefined) ?? Infinity, grantType, canary };
  log(`control: refusing token requests with ${mode}`);
  ctx.body = { mode, count: count ?? null, grantType, canary: CANARY_MODES.has(mode) ? canary : null };
}

function isOneOf<T extends string>(allowed: readonly T[], value: unknown): value is T {
  return (allowed as readonly unknown[]).includes(value);
}

function quoteAll(values: readonly string[]): string {
  return values.map((v) => `"${v}"`).join(', ');
}

function badRequest(ctx: KoaContext, description: string): void {
  ctx.status = 400;
  ctx.body = { error: 'invalid_request', error_description: description };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Short log lines on stderr; stdout carries only the ready line. Never a token value. */
export function log(line: string): void {
  process.stderr.write(`[sandbox] ${line}\n`);
}
