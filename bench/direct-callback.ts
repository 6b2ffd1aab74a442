/**
 * The callback's I/O done directly, with nothing around it: the same conditional DeleteItem, POST
 * /token, GET profile and UpdateItem the callback sends, built by hand, then one loopback round trip
 * to a trivial server for the page. Run in a process of its own by the callback bench
 * (bench/direct-process.ts), so both sides of the comparison are a dedicated process doing the I/O.
 */
import { DeleteItemCommand, type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { hashBinding } from '../functions/core/login';
import { nextRefreshAt, refreshShard } from '../functions/core/tokens';
import { type FieldCipher, openField, sealField } from '../functions/adapters/field-cipher';

/** The parts of the direct path, in order. */
export const DIRECT_PARTS = ['consumeAttempt', 'token', 'profile', 'saveTokens', 'loopback'] as const;
/** One of {@link DIRECT_PARTS}. */
export type DirectPart = (typeof DIRECT_PARTS)[number];

/** What one login leaves ready for a callback: the redirect back from the sandbox and the cookie. */
export interface PendingCallback {
  readonly search: string;
  readonly cookie: string;
  readonly state: string;
  readonly code: string;
  readonly bindingValue: string;
}

/**
 * Where a stack listens and what the bench needs to drive it: the local stack in this process
 * (`LocalStack`) or in its own (`StackChild`) both fit.
 */
export interface StackEndpoints {
  readonly baseUrl: string;
  readonly loginUrl: string;
  readonly env: Record<string, string>;
  readonly sandbox?: {
    readonly oauth2BaseUrl: string;
    readonly apiBaseUrl: string;
    readonly clientId: string;
    readonly clientSecret: string;
  };
}

/** Keep-alive loopback HTTP as a browser would: one client for every request of the process. */
export async function get(url: string, cookie?: string): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** The login attempt's conditional delete, as the session store sends it. */
export function directConsume(dynamo: DynamoDBClient, table: string, state: string, bindingValue: string, now: number) {
  return dynamo.send(
    new DeleteItemCommand({
      TableName: table,
      Key: { id: { S: `attempt#${state}` } },
      ConditionExpression: 'attribute_exists(id) AND expiresAt > :now AND bindingHash = :hash',
      ExpressionAttributeValues: { ':now': { N: String(now) }, ':hash': { S: hashBinding(bindingValue) } },
      ReturnValues: 'ALL_OLD',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    }),
  );
}

/** The tokens write: the same attributes as the token store's `saveLogin`, written by hand. */
export function directSave(
  dynamo: DynamoDBClient,
  table: string,
  userId: string,
  tokens: { accessToken: string; refreshToken: string; tokenType: string; scope: string; expiresAt: number },
  now: number,
) {
  return dynamo.send(
    new UpdateItemCommand({
      TableName: table,
      Key: { userId: { S: userId } },
      UpdateExpression:
        'SET profileId = :p, accessToken = :a, refreshToken = :r, tokenType = :t, #scope = :s, expiresAt = :e, ' +
        '#status = :active, statusAt = :now, consecutiveFailures = :zero, tokensIssuedAt = :now, updatedAt = :now, ' +
        'refreshShard = :shard, nextRefreshAt = :next, #version = if_not_exists(#version, :zero) + :one, ' +
        'createdAt = if_not_exists(createdAt, :now), boundBy = :public ' +
        'REMOVE statusReason, leaseOwner, leaseUntil, lastRefreshError, #ttl',
      // A public sign-in never replaces a link-bound user (issue 11): the same condition as saveLogin's.
      ConditionExpression:
        'attribute_not_exists(userId) OR (profileId = :p AND (attribute_not_exists(boundBy) OR boundBy <> :connect))',
      ExpressionAttributeNames: { '#scope': 'scope', '#status': 'status', '#version': 'version', '#ttl': 'ttl' },
      ExpressionAttributeValues: {
        ':p': { S: userId },
        ':a': { S: tokens.accessToken },
        ':r': { S: tokens.refreshToken },
        ':t': { S: tokens.tokenType.toLowerCase() },
        ':s': { S: tokens.scope },
        ':e': { N: String(tokens.expiresAt) },
        ':active': { S: 'active' },
        ':now': { N: String(now) },
        ':zero': { N: '0' },
        ':one': { N: '1' },
        ':shard': { N: String(refreshShard(userId)) },
        ':next': { N: String(nextRefreshAt({ expiresAt: tokens.expiresAt, tokensIssuedAt: now })) },
        ':public': { S: 'public' },
        ':connect': { S: 'connect' },
      },
      ReturnValues: 'UPDATED_OLD',
    }),
  );
}

/**
 * The callback's I/O done directly: the requests the handler must send, built by hand, with
 * nothing around them. Returns each part's duration.
 */
export function directCallback(options: {
  stack: StackEndpoints;
  dynamo: DynamoDBClient;
  trivialUrl: string;
  /**
   * The stack's field cipher: the code verifier comes out of the sessions table sealed, and the
   * refresh token goes into the tokens table sealed, as any callback of this broker must do it.
   */
  cipher: FieldCipher;
}): (pending: PendingCallback) => Promise<Record<DirectPart, number>> {
  const { stack, dynamo, trivialUrl, cipher } = options;
  const env = stack.env;
  const sandbox = stack.sandbox!;
  const basic = `Basic ${Buffer.from(
    `${encodeURIComponent(sandbox.clientId)}:${encodeURIComponent(sandbox.clientSecret)}`,
  ).toString('base64')}`;
  const tokenUrl = `${sandbox.oauth2BaseUrl}/token`;
  const profileUrl = `${sandbox.apiBaseUrl}/v1/identity/profile`;

  return async (pending) => {
    const times = {} as Record<DirectPart, number>;
    let t = performance.now();
    const lap = (part: DirectPart) => {
      const now = performance.now();
      times[part] = now - t;
      t = now;
    };
    const now = Math.floor(Date.now() / 1000);
    const consumed = await directConsume(dynamo, env.SESSIONS_TABLE, pending.state, pending.bindingValue, now);
    const verifier = await openField(
      cipher,
      { purpose: 'sessions', field: 'codeVerifier', id: `attempt#${pending.state}` },
      consumed.Attributes?.codeVerifier?.S,
    );
    lap('consumeAttempt');

    const form = new URLSearchParams({
      grant_type: 'authorization_code',
      code: pending.code,
      redirect_uri: env.REDIRECT_URL,
    });
    if (verifier) form.set('code_verifier', verifier);
    const tokenRes = await fetch(tokenUrl, {
      method: 'POST',
      headers: {
        authorization: basic,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: form,
    });
    const tokens = (await tokenRes.json()) as {
      access_token: string;
      refresh_token: string;
      token_type: string;
      expires_in: number;
      scope?: string;
    };
    if (tokenRes.status !== 200 || !tokens.refresh_token) throw new Error(`direct POST /token: ${tokenRes.status}`);
    lap('token');

    const profileRes = await fetch(profileUrl, {
      headers: { authorization: `Bearer ${tokens.access_token}`, accept: 'application/json' },
    });
    const profileId = ((await profileRes.json()) as { data: { id: string } }).data.id;
    lap('profile');

    await directSave(
      dynamo,
      env.TOKENS_TABLE,
      profileId,
      {
        accessToken: tokens.access_token,
        refreshToken: (await sealField(
          cipher,
          { purpose: 'tokens', field: 'refreshToken', id: profileId },
          tokens.refresh_token,
        ))!,
        tokenType: tokens.token_type,
        scope: tokens.scope ?? '',
        expiresAt: now + tokens.expires_in,
      },
      now,
    );
    lap('saveTokens');

    await get(trivialUrl);
    lap('loopback');
    return times;
  };
}
