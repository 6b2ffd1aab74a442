/**
 * Callback overhead, measured from outside: real logins through the local stack's HTTP server
 * (GET /login -> the sandbox's sign-in and consent -> GET /callback), the /callback request timed by
 * its client from the first byte sent to the last byte of the page read. Interleaved with it, in the
 * same run, the same I/O done directly by the bench (same DynamoDB Local, same sandbox provider):
 *
 *   consume the login attempt (the conditional DeleteItem) -> POST /token -> GET the profile ->
 *   write the tokens item (the same UpdateItem) -> one loopback HTTP round trip to a trivial server
 *   answering a page of the same size.
 *
 * The ratio of the two medians is what the callback costs on top of the I/O any callback must do:
 * everything in between (the HTTP adapter, event building, parsing, validation, logging, the page,
 * SDK and fetch work) shows, which a ratio against the handler's own I/O calls cannot see.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { DeleteItemCommand, type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { readProviderConfig } from '../functions/core/config';
import { hashBinding } from '../functions/core/login';
import { createProviderClient } from '../functions/adapters/provider';
import { DynamoSessionStore } from '../functions/adapters/session-store';
import { DynamoTokenStore } from '../functions/adapters/token-store';
import { fieldCipher } from '../functions/services';
import { nextRefreshAt, refreshShard, scheduleAfterTokens } from '../functions/core/tokens';
import { completeAuthorization } from '../infra/local/sandbox/headless';
import type { LocalStack } from '../infra/local/stack';
import { type DynamoCounter, HttpClock, type LogTap } from './instrument';
import { type CpuBreakdown, CpuProfiler, meanBreakdown } from './profile';
import { median, progress, quantile, ratio, round, table } from './stats';

/** Goal of the issue: the callback, seen from outside, within 1.10x of the same I/O done directly. */
export const CALLBACK_GOAL = 1.1;

/** Median and p90, in milliseconds. */
export interface Spread {
  readonly p50: number;
  readonly p90: number;
}

/** Everything the section measured. */
export interface CallbackLatencyResult {
  readonly logins: number;
  readonly warmup: number;
  /** GET /callback through the local stack, timed by its client. */
  readonly outsideMs: Spread;
  /**
   * Where the outside callback's time went: the server's part (request in -> response out), its
   * I/O calls as the handler made them, the rest of the server's time (`handlerOwn`: adapter, event,
   * parsing, validation, logging, the page) and the HTTP exchange around it (`httpAround`).
   */
  readonly outsideParts: Record<
    'server' | 'consumeAttempt' | 'token' | 'profile' | 'saveTokens' | 'handlerOwn' | 'httpAround',
    Spread
  >;
  /** The same I/O done directly, plus one loopback round trip. */
  readonly directMs: Spread;
  /** The direct path's parts. */
  readonly directParts: Record<DirectPart, Spread>;
  /** Process CPU time (user + system) of this process per request: client, server and handler. */
  readonly cpuMs: { readonly outside: Spread; readonly direct: Spread };
  /** median(outside) / median(direct). */
  readonly ratio: number;
  /**
   * Two figures less moved by a busy machine: the median of each pair's own ratio (the two runs of a
   * pair are adjacent in time) and the ratio of the 10th percentiles (the least disturbed runs).
   */
  readonly pairRatio: number;
  readonly p10Ratio: number;
  /** The same for CPU time: less sensitive to a busy machine than wall time. */
  readonly cpuRatio: number;
  readonly goal: number;
  /** DynamoDB requests one callback sends (from the client's middleware), e.g. `{"handler: DeleteItem": 1}`. */
  readonly dynamoRequestsPerCallback: Record<string, number>;
  /** Log bytes and lines one callback writes at the deployed level (INFO). */
  readonly logBytesPerCallback: number;
  readonly logLinesPerCallback: number;
  /** Each I/O call through its adapter against the same request sent raw (medians, ms). */
  readonly adapters?: AdapterCost[];
  /** CPU profiles, one per request, of each path: means per component (ms per request). */
  readonly profile?: {
    readonly requests: number;
    readonly outside: CpuBreakdown;
    readonly direct: CpuBreakdown;
    readonly file: string;
  };
}

const DIRECT_PARTS = ['consumeAttempt', 'token', 'profile', 'saveTokens', 'loopback'] as const;
type DirectPart = (typeof DIRECT_PARTS)[number];

/** What one login leaves ready for a callback: the redirect back from the sandbox and the cookie. */
export interface PendingCallback {
  readonly search: string;
  readonly cookie: string;
  readonly state: string;
  readonly code: string;
  readonly bindingValue: string;
}

/** Keep-alive loopback HTTP as a browser would: one client for every request of the bench. */
export async function get(url: string, cookie?: string): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/**
 * True for the callback's answer to a sign-in that stored a grant: a 303 to its own clean URL, where
 * a second request (no I/O) renders the result page from a cookie.
 */
export function storedGrant(stack: LocalStack, res: { status: number; headers: Headers }): boolean {
  return res.status === 303 && res.headers.get('location') === `${stack.baseUrl}/callback`;
}

/** Starts a login at the stack and walks the sandbox's pages: what the browser holds before /callback. */
export async function startLogin(stack: LocalStack, login: string): Promise<PendingCallback> {
  const started = await get(stack.loginUrl);
  const location = started.headers.get('location');
  const setCookie = started.headers.getSetCookie()[0];
  if (started.status !== 302 || !location || !setCookie) throw new Error(`/login answered ${started.status}`);
  const cookie = setCookie.split(';')[0];
  const back = await completeAuthorization(location, { login });
  const state = back.searchParams.get('state') ?? '';
  const code = back.searchParams.get('code') ?? '';
  if (!code) throw new Error(`the sandbox did not return a code: ${back.search}`);
  return { search: back.search, cookie, state, code, bindingValue: cookie.slice(cookie.indexOf('=') + 1) };
}

/** A server that answers every GET with `body`: the round trip the direct path adds for the page. */
async function startTrivialServer(body: string): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://localhost:${(server.address() as AddressInfo).port}/`, server };
}

/** The login attempt's conditional delete, as the session store sends it. */
function directConsume(dynamo: DynamoDBClient, table: string, state: string, bindingValue: string, now: number) {
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
function directSave(
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
function directCallback(options: {
  stack: LocalStack;
  dynamo: DynamoDBClient;
  trivialUrl: string;
}): (pending: PendingCallback) => Promise<Record<DirectPart, number>> {
  const { stack, dynamo, trivialUrl } = options;
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
    const verifier = consumed.Attributes?.codeVerifier?.S;
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
        refreshToken: tokens.refresh_token,
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

/** One adapter call against the raw request it makes, on the same client, CPU and wall. */
export interface AdapterCost {
  readonly call: string;
  readonly lives: string;
  readonly adapterCpuMs: number;
  readonly rawCpuMs: number;
  readonly adapterMs: number;
  readonly rawMs: number;
}

/**
 * CPU of each I/O call of the callback through its adapter in `functions/` (what the handler runs)
 * against the same request sent raw, alternating, `calls` times each: what the adapter code itself
 * costs. Process CPU time (user + system) from `process.cpuUsage`, which a busy machine does not
 * inflate as it does wall time. The code exchange cannot be repeated (a code is single-use), so the
 * token endpoint is measured with the refresh grant, through the same oauth4webapi path.
 */
async function measureAdapterCosts(stack: LocalStack, dynamo: DynamoDBClient, calls: number): Promise<AdapterCost[]> {
  const env = stack.env;
  const sandbox = stack.sandbox!;
  const pending = await startLogin(stack, 'bench-adapters');
  const done = await get(`${stack.baseUrl}/callback${pending.search}`, pending.cookie);
  if (!storedGrant(stack, done)) throw new Error(`login for the adapter costs answered ${done.status}`);
  // The stack's own field cipher: these stores read what its handlers sealed.
  const cipher = fieldCipher(stack.services);
  const sessions = new DynamoSessionStore(dynamo, env.SESSIONS_TABLE, cipher);
  const tokens = new DynamoTokenStore(dynamo, env.TOKENS_TABLE, cipher);
  const client = createProviderClient(readProviderConfig(env), async () => sandbox.clientSecret);
  const record = await tokens.get('bench-adapters');
  if (!record) throw new Error('no tokens for the adapter costs');
  let refreshToken = record.refreshToken;
  let accessToken = record.accessToken;
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(sandbox.clientId)}:${encodeURIComponent(sandbox.clientSecret)}`).toString('base64')}`;
  const samples = new Map<string, { cpu: number[]; wall: number[] }>();
  const measure = async (name: string, fn: () => Promise<unknown>) => {
    const cpu = process.cpuUsage();
    const started = performance.now();
    await fn();
    const wall = performance.now() - started;
    const used = process.cpuUsage(cpu);
    const entry = samples.get(name) ?? { cpu: [], wall: [] };
    entry.cpu.push((used.user + used.system) / 1000);
    entry.wall.push(wall);
    samples.set(name, entry);
  };
  const now = () => Math.floor(Date.now() / 1000);
  const attempt = async () => {
    const state = randomBytes(24).toString('base64url');
    await sessions.putAttempt({
      state,
      codeVerifier: 'v'.repeat(43),
      bindingHash: hashBinding('binding'),
      expiresAt: now() + 600,
    });
    return state;
  };
  const set = (i: number) => ({
    accessToken: `access-${i}`.padEnd(43, 'a'),
    refreshToken: `refresh-${i}`.padEnd(43, 'r'),
    tokenType: 'bearer',
    scope: record.scope,
    expiresAt: now() + 1800,
  });
  for (let i = 0; i < calls; i++) {
    const a = await attempt();
    const b = await attempt();
    await measure('consumeAttempt', () => sessions.consumeAttempt(a, hashBinding('binding'), now()));
    await measure('raw consumeAttempt', () => directConsume(dynamo, env.SESSIONS_TABLE, b, 'binding', now()));
    await measure('saveLogin', () =>
      tokens.saveLogin({
        userId: 'bench-adapter-a',
        profileId: 'bench-adapter-a',
        tokens: set(i),
        now: now(),
        schedule: scheduleAfterTokens('bench-adapter-a', set(i), now()),
        boundBy: 'public',
      }),
    );
    await measure('raw saveLogin', () => directSave(dynamo, env.TOKENS_TABLE, 'bench-adapter-b', set(i), now()));
    await measure('token endpoint', async () => {
      const next = await client.refresh({ refreshToken, scope: record.scope });
      refreshToken = next.refreshToken ?? refreshToken;
      accessToken = next.accessToken;
    });
    await measure('raw token endpoint', async () => {
      const res = await fetch(`${sandbox.oauth2BaseUrl}/token`, {
        method: 'POST',
        headers: {
          authorization: basic,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
      });
      const body = (await res.json()) as { refresh_token: string; access_token: string };
      refreshToken = body.refresh_token;
      accessToken = body.access_token;
    });
    await measure('fetchProfileId', () => client.fetchProfileId(accessToken));
    await measure('raw fetchProfileId', async () => {
      const res = await fetch(`${sandbox.apiBaseUrl}/v1/identity/profile`, {
        headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
      });
      await res.json();
    });
  }
  const p50 = (name: string, key: 'cpu' | 'wall') => round(median(samples.get(name)![key]), 3);
  const lives: Record<string, string> = {
    consumeAttempt: 'functions/adapters/session-store.ts',
    saveLogin: 'functions/adapters/token-store.ts',
    'token endpoint': 'functions/adapters/provider.ts + oauth4webapi (refresh grant)',
    fetchProfileId: 'functions/adapters/provider.ts',
  };
  return Object.keys(lives).map((call) => ({
    call,
    lives: lives[call],
    adapterCpuMs: p50(call, 'cpu'),
    rawCpuMs: p50(`raw ${call}`, 'cpu'),
    adapterMs: p50(call, 'wall'),
    rawMs: p50(`raw ${call}`, 'wall'),
  }));
}

const spread = (values: number[]): Spread => ({ p50: round(median(values)), p90: round(quantile(values, 0.9)) });

/** Where one outside callback spent its wall time, from the server's and the clients' own events. */
interface OutsideSplit {
  total: number;
  /** The stack's server: request received -> response finished (adapter + handler). */
  server: number;
  consumeAttempt: number;
  token: number;
  profile: number;
  saveTokens: number;
}

/**
 * Runs the section on a started local stack (its sandbox included). `counter` must already count the
 * handlers' DynamoDB client (as `handler`) and the bench's own (as `direct`); `logs` must be installed.
 */
export async function measureCallbackLatency(
  stack: LocalStack,
  deps: { dynamo: DynamoDBClient; counter: DynamoCounter; logs: LogTap; resultsDir: string },
  options: { logins: number; warmup: number; profileLogins: number; adapterCalls: number },
): Promise<CallbackLatencyResult> {
  if (!stack.sandbox) throw new Error('the callback bench needs the sandbox provider');
  const { counter, logs } = deps;

  // What the callback answers (a redirect to its clean result page), to size the trivial server's answer like it.
  const sample = await startLogin(stack, 'bench-sample');
  const page = await get(`${stack.baseUrl}/callback${sample.search}`, sample.cookie);
  if (!storedGrant(stack, page)) throw new Error(`callback answered ${page.status}: ${page.body.slice(0, 300)}`);
  const trivial = await startTrivialServer(page.body);
  const clock = new HttpClock();
  clock.start();

  try {
    // The handlers' own DynamoDB client: the same warm connections, so only what is around the I/O differs.
    const direct = directCallback({ stack, dynamo: deps.dynamo, trivialUrl: trivial.url });
    const outside = async (pending: PendingCallback) => {
      const started = performance.now();
      const res = await get(`${stack.baseUrl}/callback${pending.search}`, pending.cookie);
      const ms = performance.now() - started;
      if (!storedGrant(stack, res)) throw new Error(`callback answered ${res.status}: ${res.body.slice(0, 300)}`);
      return ms;
    };

    const outsideSplits: OutsideSplit[] = [];
    const outsideCpu: number[] = [];
    const directCpu: number[] = [];
    const directMs: number[] = [];
    const parts = Object.fromEntries(DIRECT_PARTS.map((p) => [p, [] as number[]])) as Record<DirectPart, number[]>;
    let requestsSeen: Record<string, number> = {};
    let logBytes = 0;
    let logLines = 0;
    const cpuMs = (since: NodeJS.CpuUsage) => {
      const used = process.cpuUsage(since);
      return (used.user + used.system) / 1000;
    };
    const count = options.warmup + options.logins;
    for (let i = 0; i < count; i++) {
      // Both logins are set up first, so each timed request starts from the same idle state.
      const a = await startLogin(stack, `bench-outside-${i}`);
      const b = await startLogin(stack, `bench-direct-${i}`);
      const counting = i >= options.warmup;
      const runOutside = async () => {
        clock.clear();
        const mark = counter.mark;
        const logged = { bytes: logs.bytes, lines: logs.lines };
        const cpu = process.cpuUsage();
        const total = await outside(a);
        const cpuUsed = cpuMs(cpu);
        const dynamo = counter.since(mark).filter((r) => r.client === 'handler');
        if (!counting) return;
        outsideCpu.push(cpuUsed);
        logBytes = logs.bytes - logged.bytes;
        logLines = logs.lines - logged.lines;
        requestsSeen = {};
        for (const r of dynamo) {
          const key = r.command.replace(/Command$/, '');
          requestsSeen[key] = (requestsSeen[key] ?? 0) + 1;
        }
        const sum = (list: number[]) => list.reduce((s, v) => s + v, 0);
        outsideSplits.push({
          total,
          server: sum(clock.take('/callback').slice(0, 1)),
          token: sum(clock.take('/token')),
          profile: sum(clock.take('/v1/identity/profile')),
          consumeAttempt: sum(dynamo.filter((r) => r.command === 'DeleteItemCommand').map((r) => r.ms)),
          saveTokens: sum(dynamo.filter((r) => r.command === 'UpdateItemCommand').map((r) => r.ms)),
        });
      };
      const runDirect = async () => {
        const cpu = process.cpuUsage();
        const times = await direct(b);
        const cpuUsed = cpuMs(cpu);
        if (!counting) return;
        directCpu.push(cpuUsed);
        directMs.push(DIRECT_PARTS.reduce((sum, p) => sum + times[p], 0));
        for (const p of DIRECT_PARTS) parts[p].push(times[p]);
      };
      // Alternate which goes first, so neither always follows the sign-in pages' requests.
      if (i % 2 === 0) {
        await runOutside();
        await runDirect();
      } else {
        await runDirect();
        await runOutside();
      }
      const done = i + 1 - options.warmup;
      if (done > 0 && done % 10 === 0) progress(`callback: ${done}/${options.logins} interleaved pairs`);
    }
    clock.stop();

    let profile: CallbackLatencyResult['profile'];
    if (options.profileLogins > 0) {
      progress(`callback: CPU profiles of ${options.profileLogins} callbacks each way, interleaved...`);
      const profiler = new CpuProfiler();
      await profiler.open();
      const outsideRuns: CpuBreakdown[] = [];
      const directRuns: CpuBreakdown[] = [];
      try {
        for (let i = 0; i < options.profileLogins; i++) {
          const a = await startLogin(stack, `bench-profile-outside-${i}`);
          const b = await startLogin(stack, `bench-profile-direct-${i}`);
          // One profile per request, alternating, so a busy moment of the machine hits both alike.
          const file = (name: string) => (i === 0 ? `${deps.resultsDir}/callback-${name}.cpuprofile` : undefined);
          outsideRuns.push(await profiler.profile(async () => void (await outside(a)), file('outside')));
          directRuns.push(await profiler.profile(async () => void (await direct(b)), file('direct')));
        }
      } finally {
        profiler.close();
      }
      profile = {
        requests: options.profileLogins,
        outside: meanBreakdown(outsideRuns),
        direct: meanBreakdown(directRuns),
        file: 'bench/results/callback-{outside,direct}.cpuprofile',
      };
    }

    let adapters: AdapterCost[] | undefined;
    if (options.adapterCalls > 0) {
      progress(`callback: each I/O call through its adapter vs raw, ${options.adapterCalls} times each...`);
      adapters = await measureAdapterCosts(stack, deps.dynamo, options.adapterCalls);
    }

    const outsideMs = outsideSplits.map((s) => s.total);
    const pick = (key: keyof OutsideSplit) => spread(outsideSplits.map((s) => s[key]));
    return {
      logins: options.logins,
      warmup: options.warmup,
      outsideMs: spread(outsideMs),
      outsideParts: {
        server: pick('server'),
        consumeAttempt: pick('consumeAttempt'),
        token: pick('token'),
        profile: pick('profile'),
        saveTokens: pick('saveTokens'),
        handlerOwn: spread(outsideSplits.map((s) => s.server - s.consumeAttempt - s.token - s.profile - s.saveTokens)),
        httpAround: spread(outsideSplits.map((s) => s.total - s.server)),
      },
      directMs: spread(directMs),
      directParts: Object.fromEntries(DIRECT_PARTS.map((p) => [p, spread(parts[p])])) as Record<DirectPart, Spread>,
      cpuMs: { outside: spread(outsideCpu), direct: spread(directCpu) },
      ratio: round(median(outsideMs) / median(directMs), 3),
      pairRatio: round(median(outsideMs.map((ms, i) => ms / directMs[i])), 3),
      p10Ratio: round(quantile(outsideMs, 0.1) / quantile(directMs, 0.1), 3),
      cpuRatio: round(median(outsideCpu) / median(directCpu), 3),
      goal: CALLBACK_GOAL,
      dynamoRequestsPerCallback: requestsSeen,
      logBytesPerCallback: logBytes,
      logLinesPerCallback: logLines,
      adapters,
      profile,
    };
  } finally {
    clock.stop();
    trivial.server.closeAllConnections();
    trivial.server.close();
  }
}

/** Project components of a CPU breakdown: what lives in `functions/` (and its one library) vs the rest. */
function ownership(name: string): 'functions/' | 'infra/local/' | 'bench' | 'runtime and SDK' {
  if (name.startsWith('functions/') || name === 'oauth4webapi') return 'functions/';
  if (name.startsWith('infra/')) return 'infra/local/';
  if (name.startsWith('bench/')) return 'bench';
  return 'runtime and SDK';
}

/** The section as markdown. */
export function callbackMarkdown(result: CallbackLatencyResult): string {
  const ms = (value: number) => `${value.toFixed(2)} ms`;
  const o = result.outsideParts;
  const d = result.directParts;
  const within = round(result.ratio, 2) <= result.goal;
  const lines = [
    '### Callback overhead, measured from outside',
    '',
    `${result.logins} pairs (after ${result.warmup} warm-up), interleaved: GET /callback through the local stack's HTTP server ` +
      'after a real /login and sandbox sign-in, timed by its client, against the same I/O done directly by the bench ' +
      '(the same conditional DeleteItem, POST /token, GET profile, the same UpdateItem, one loopback round trip to a ' +
      `trivial server answering a page of the same size). Goal: outside / direct ≤ ${result.goal.toFixed(2)}x.`,
    '',
    table(
      ['part', 'callback p50', 'callback p90', 'direct p50', 'direct p90'],
      [
        [
          'consume the login attempt (DeleteItem)',
          ms(o.consumeAttempt.p50),
          ms(o.consumeAttempt.p90),
          ms(d.consumeAttempt.p50),
          ms(d.consumeAttempt.p90),
        ],
        ['POST /token', ms(o.token.p50), ms(o.token.p90), ms(d.token.p50), ms(d.token.p90)],
        ['GET profile', ms(o.profile.p50), ms(o.profile.p90), ms(d.profile.p50), ms(d.profile.p90)],
        [
          'write the tokens (UpdateItem)',
          ms(o.saveTokens.p50),
          ms(o.saveTokens.p90),
          ms(d.saveTokens.p50),
          ms(d.saveTokens.p90),
        ],
        ['handler and adapter around the I/O', ms(o.handlerOwn.p50), ms(o.handlerOwn.p90), '', ''],
        [
          'HTTP exchange (client ↔ server) / loopback round trip',
          ms(o.httpAround.p50),
          ms(o.httpAround.p90),
          ms(d.loopback.p50),
          ms(d.loopback.p90),
        ],
        [
          '**total**',
          `**${ms(result.outsideMs.p50)}**`,
          ms(result.outsideMs.p90),
          `**${ms(result.directMs.p50)}**`,
          ms(result.directMs.p90),
        ],
        [
          'process CPU per request',
          ms(result.cpuMs.outside.p50),
          ms(result.cpuMs.outside.p90),
          ms(result.cpuMs.direct.p50),
          ms(result.cpuMs.direct.p90),
        ],
      ],
    ),
    '',
    `Ratio of the medians: **${ratio(result.ratio)}** wall (${within ? 'within' : '**over**'} the goal), ${ratio(result.cpuRatio)} CPU; ` +
      `median of the pairs' own ratios ${ratio(result.pairRatio)}, ratio of the 10th percentiles ${ratio(result.p10Ratio)}. ` +
      "Each part is its own median, so the parts do not add up to the total exactly. The callback's I/O is timed at the wire " +
      "(the SDK client's middleware, fetch's diagnostics events), so building requests and reading answers count in " +
      "'around the I/O'; the direct parts include them. Per callback: DynamoDB requests " +
      `${Object.entries(result.dynamoRequestsPerCallback)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ')}; ` +
      `${result.logLinesPerCallback} log lines, ${result.logBytesPerCallback} bytes at INFO.`,
  ];
  if (result.adapters) {
    lines.push(
      '',
      'Each I/O call of the callback through its adapter (the code in `functions/`) against the same request sent raw on the same ' +
        'client, alternating; medians of process CPU time and wall time per call:',
      '',
      table(
        ['call', 'code', 'adapter CPU', 'raw CPU', 'CPU added', 'adapter wall', 'raw wall'],
        result.adapters.map((a) => [
          a.call,
          a.lives,
          ms(a.adapterCpuMs),
          ms(a.rawCpuMs),
          ms(a.adapterCpuMs - a.rawCpuMs),
          ms(a.adapterMs),
          ms(a.rawMs),
        ]),
      ),
    );
  }
  if (result.profile) {
    const { outside, direct, requests } = result.profile;
    const names = [...new Set([...outside.components, ...direct.components].map((c) => c.name))];
    const of = (b: CpuBreakdown, name: string) => b.components.find((c) => c.name === name)?.ms ?? 0;
    const rows = names
      .map((name) => ({ name, a: of(outside, name), b: of(direct, name) }))
      .sort((x, y) => y.a - y.b - (x.a - x.b));
    lines.push(
      '',
      `Where the CPU goes: ${requests} requests each way, one CPU profile per request (\`${result.profile.file}\`, the first pair), ` +
        'mean CPU ms per request by component (native code counts for its JavaScript caller). The sandbox provider and DynamoDB Local ' +
        'run in other processes and are not in these profiles.',
      '',
      table(
        ['component', 'lives in', 'callback', 'direct', 'difference'],
        rows
          .filter((r) => r.a >= 0.01 || r.b >= 0.01)
          .map((r) => [r.name, ownership(r.name), r.a.toFixed(2), r.b.toFixed(2), (r.a - r.b).toFixed(2)]),
      ),
      '',
      `Sampled CPU per request: callback ${outside.cpuMs.toFixed(2)} ms, direct ${direct.cpuMs.toFixed(2)} ms (medians; the profiler slows both).`,
    );
  }
  return lines.join('\n');
}
