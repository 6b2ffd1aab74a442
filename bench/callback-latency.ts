/**
 * Callback overhead, measured from outside: the local stack runs in a process of its own, as under
 * `npm start` (bench/processes.ts), and real logins go through it over HTTP (GET /login -> the
 * sandbox's sign-in and consent -> GET /callback). A driver process, the client of both sides, times
 * the /callback request from the first byte sent to the last byte of the page read, and, interleaved
 * with it, the same I/O done directly (bench/direct-callback.ts; same DynamoDB Local, same sandbox):
 *
 *   consume the login attempt (the conditional DeleteItem) -> POST /token -> GET the profile ->
 *   write the tokens item (the same UpdateItem) -> one loopback HTTP round trip to a trivial server
 *   (in a process of its own, as the stack is) answering a page of the same size.
 *
 * The ratio of the two medians is what the callback costs on top of the I/O any callback must do:
 * everything in between (the HTTP adapter, event building, parsing, validation, logging, the page,
 * SDK and fetch work) shows, which a ratio against the handler's own I/O calls cannot see. Several
 * rounds, each with new processes, so one lucky or unlucky process does not decide it. Each side is a
 * client process and a server process; the bench process (logins, bookkeeping) times neither.
 *
 * The timed pairs run with the stack process uninstrumented. Where the time goes comes from a
 * separate, shorter pass with its instruments on (SDK middleware, diagnostics channels), and from CPU
 * profiles of the stack process (the server side) and of the driver (the direct path).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { readProviderConfig } from '../functions/core/config';
import { hashBinding } from '../functions/core/login';
import { createProviderClient } from '../functions/adapters/provider';
import { DynamoSessionStore } from '../functions/adapters/session-store';
import { DynamoTokenStore } from '../functions/adapters/token-store';
import { scheduleAfterTokens } from '../functions/core/tokens';
import { createServices, fieldCipher } from '../functions/services';
import { completeAuthorization } from '../infra/local/sandbox/headless';
import {
  DIRECT_PARTS,
  type DirectPart,
  directConsume,
  directSave,
  get,
  type PendingCallback,
  type StackEndpoints,
} from './direct-callback';
import { type CpuBreakdown, meanBreakdown } from './profile';
import { type DriverProcess, startDriverProcess, startStackProcess, type StackProcess } from './processes';
import { median, progress, quantile, ratio, round, table } from './stats';

/** Goal of the issue: the callback, seen from outside, within 1.10x of the same I/O done directly. */
export const CALLBACK_GOAL = 1.1;

/** Median and p90, in milliseconds. */
export interface Spread {
  readonly p50: number;
  readonly p90: number;
}

/** One round: a new stack process, its own interleaved pairs. */
export interface CallbackRound {
  readonly outsideP50: number;
  readonly directP50: number;
  /** median(outside) / median(direct) of this round. */
  readonly ratio: number;
  /** CPU per callback of the stack process plus the bench's client, against the direct path's. */
  readonly cpuRatio: number;
}

/** Everything the section measured. */
export interface CallbackLatencyResult {
  /** Pairs per round, rounds (each a new stack process), warm-up pairs per round. */
  readonly logins: number;
  readonly rounds: number;
  readonly warmup: number;
  /** GET /callback through the stack process, timed by its client (the driver); all rounds' pairs. */
  readonly outsideMs: Spread;
  /**
   * Where the outside callback's time went (the instrumented pass): the server's part (request
   * in -> response out), its I/O calls as the handler made them, the rest of the server's time
   * (`handlerOwn`: adapter, event, parsing, validation, logging, the page) and the HTTP exchange
   * around it (`httpAround`).
   */
  readonly outsideParts: Record<
    'server' | 'consumeAttempt' | 'token' | 'profile' | 'saveTokens' | 'handlerOwn' | 'httpAround',
    Spread
  >;
  /** Pairs in the instrumented pass, and their totals. */
  readonly splitLogins: number;
  readonly split: { readonly outsideMs: Spread; readonly directMs: Spread };
  /** The same I/O done directly, plus one loopback round trip. */
  readonly directMs: Spread;
  /** The direct path's parts, in the instrumented pass (the stack's instruments do not touch it). */
  readonly directParts: Record<DirectPart, Spread>;
  /**
   * Process CPU time (user + system) per request: outside, the stack process's (server, handler,
   * SDK, fetch) plus the driver's client; direct, the driver's plus the trivial server's.
   */
  readonly cpuMs: {
    readonly outside: Spread;
    readonly direct: Spread;
    /** The parts: the stack process, the driver's GET /callback, the trivial server's answer. */
    readonly server: Spread;
    readonly client: Spread;
    readonly trivialServer: Spread;
  };
  /** median(outside) / median(direct), all rounds' pairs together. */
  readonly ratio: number;
  /** Each round's own figures, in order. */
  readonly perRound: readonly CallbackRound[];
  /**
   * Two figures less moved by a busy machine: the median of each pair's own ratio (the two runs of a
   * pair are adjacent in time) and the ratio of the 10th percentiles (the least disturbed runs).
   */
  readonly pairRatio: number;
  readonly p10Ratio: number;
  /** The same for CPU time: less sensitive to a busy machine than wall time. */
  readonly cpuRatio: number;
  readonly goal: number;
  /** DynamoDB requests one callback sends (from the client's middleware), e.g. `{"DeleteItem": 1}`. */
  readonly dynamoRequestsPerCallback: Record<string, number>;
  /** Log bytes and lines one callback writes at the deployed level (INFO). */
  readonly logBytesPerCallback: number;
  readonly logLinesPerCallback: number;
  /** Each I/O call through its adapter against the same request sent raw (medians, ms). */
  readonly adapters?: AdapterCost[];
  /** CPU profiles, one per request: the stack process's for /callback, the driver's for the direct path. */
  readonly profile?: {
    readonly requests: number;
    readonly outside: CpuBreakdown;
    readonly direct: CpuBreakdown;
    readonly file: string;
  };
}

export { get, type PendingCallback, type StackEndpoints };

/**
 * True for the callback's answer to a sign-in that stored a grant: a 303 to its own clean URL, where
 * a second request (no I/O) renders the result page from a cookie.
 */
export function storedGrant(
  stack: Pick<StackEndpoints, 'baseUrl'>,
  res: { status: number; headers?: Headers; location?: string | null },
): boolean {
  const location = res.location !== undefined ? res.location : res.headers?.get('location');
  return res.status === 303 && location === `${stack.baseUrl}/callback`;
}

/** Starts a login at the stack and walks the sandbox's pages: what the browser holds before /callback. */
export async function startLogin(stack: Pick<StackEndpoints, 'loginUrl'>, login: string): Promise<PendingCallback> {
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

/** The trivial server's process. */
interface TrivialServer {
  readonly url: string;
  /** Its process CPU time so far, ms. */
  cpuMs(): Promise<number>;
  stop(): void;
}

/**
 * A server that answers every GET with `body`, in a process of its own: the round trip the direct
 * path adds for the page. Its own process, like the stack's, so the direct path crosses processes
 * for it as the callback's HTTP exchange does (in the bench's process it would skip the wake-up of
 * another process, which on a busy machine is most of a round trip).
 */
async function startTrivialServer(body: string): Promise<TrivialServer> {
  const code = [
    "const body = Buffer.from(process.env.TRIVIAL_BODY, 'base64');",
    "const server = require('node:http').createServer((_req, res) => {",
    "  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(body);",
    '});',
    "server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\\n`));",
    "process.on('disconnect', () => process.exit(0));",
    // Its CPU time on request, between timed requests: the direct path's server side.
    "process.on('message', () => { const u = process.cpuUsage(); process.send((u.user + u.system) / 1000); });",
  ].join('\n');
  const child = spawn(process.execPath, ['-e', code], {
    env: { TRIVIAL_BODY: Buffer.from(body).toString('base64') },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return {
    url: `http://localhost:${Number(line)}/`,
    async cpuMs() {
      child.send('cpu');
      const [ms] = (await once(child, 'message')) as [number];
      return ms;
    },
    stop: () => void child.kill(),
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
async function measureAdapterCosts(
  stack: StackEndpoints,
  dynamo: DynamoDBClient,
  calls: number,
): Promise<AdapterCost[]> {
  const env = stack.env;
  const sandbox = stack.sandbox!;
  const pending = await startLogin(stack, 'bench-adapters');
  const done = await get(`${stack.baseUrl}/callback${pending.search}`, pending.cookie);
  if (!storedGrant(stack, done)) throw new Error(`login for the adapter costs answered ${done.status}`);
  // The stack's field key (its local key file, named in its environment): these stores read what
  // its handlers sealed.
  const cipher = fieldCipher(createServices(env));
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

/** Where one outside callback spent its wall time, from the stack process's own instruments. */
interface OutsideSplit {
  total: number;
  /** The stack's server: request received -> response finished (adapter + handler). */
  server: number;
  consumeAttempt: number;
  token: number;
  profile: number;
  saveTokens: number;
}

const sum = (list: readonly number[]) => list.reduce((total, v) => total + v, 0);

/** GET /callback for a pending login, sent and timed by the driver: wall ms and the driver's CPU ms. */
async function outsideCallback(
  driver: DriverProcess,
  stack: StackEndpoints,
  pending: PendingCallback,
): Promise<{ ms: number; cpuMs: number }> {
  const res = await driver.callback(`${stack.baseUrl}/callback${pending.search}`, pending.cookie);
  if (!storedGrant(stack, res)) throw new Error(`callback answered ${res.status}`);
  return res;
}

/** Runs `pairs` interleaved pairs (after `warmup`), alternating which goes first. */
async function interleaved(
  stack: StackEndpoints,
  label: string,
  pairs: number,
  warmup: number,
  run: (a: PendingCallback, b: PendingCallback, counting: boolean, outsideFirst: boolean) => Promise<void>,
): Promise<void> {
  for (let i = 0; i < warmup + pairs; i++) {
    // Both logins are set up first, so each timed request starts from the same idle state.
    const a = await startLogin(stack, `bench-${label}-outside-${i}`);
    const b = await startLogin(stack, `bench-${label}-direct-${i}`);
    await run(a, b, i >= warmup, i % 2 === 0);
    const done = i + 1 - warmup;
    if (done > 0 && done % 10 === 0) progress(`callback: ${label}: ${done}/${pairs} interleaved pairs`);
  }
}

/**
 * Runs the section: `rounds` stack processes one after the other on the DynamoDB Local at
 * `dynamoEndpoint`, each with `logins` timed pairs; then, on the last one, the instrumented pass,
 * the CPU profiles and the adapter costs. `dynamo` is the bench's own client on that endpoint.
 */
export async function measureCallbackLatency(
  dynamoEndpoint: string,
  deps: { dynamo: DynamoDBClient; resultsDir: string },
  options: {
    rounds: number;
    logins: number;
    warmup: number;
    splitLogins: number;
    profileLogins: number;
    adapterCalls: number;
    /** Requests of each kind the driver sends first, so its code is as hot as the stack's. */
    warmCalls: number;
  },
): Promise<CallbackLatencyResult> {
  const outsideMs: number[] = [];
  const directMs: number[] = [];
  const outsideCpu: number[] = [];
  const serverCpu: number[] = [];
  const clientCpu: number[] = [];
  const trivialCpu: number[] = [];
  const directCpu: number[] = [];
  const parts = Object.fromEntries(DIRECT_PARTS.map((p) => [p, [] as number[]])) as Record<DirectPart, number[]>;
  const perRound: CallbackRound[] = [];
  let logBytes = 0;
  let logLines = 0;
  let stack: StackProcess | undefined;
  let driverProcess: DriverProcess | undefined;
  let trivial: TrivialServer | undefined;

  try {
    for (let k = 0; k < options.rounds; k++) {
      await driverProcess?.stop();
      await stack?.stop();
      progress(
        `callback: round ${k + 1}/${options.rounds}: starting the stack and the direct path, each in its own process...`,
      );
      stack = await startStackProcess(dynamoEndpoint);
      const s = stack;
      if (!s.sandbox) throw new Error('the callback bench needs the sandbox provider');
      if (!trivial) {
        // What the callback answers (a redirect to its clean result page), to size the trivial server's answer like it.
        const sample = await startLogin(s, 'bench-sample');
        const page = await get(`${s.baseUrl}/callback${sample.search}`, sample.cookie);
        if (!storedGrant(s, page)) throw new Error(`callback answered ${page.status}: ${page.body.slice(0, 300)}`);
        trivial = await startTrivialServer(page.body);
      }
      const t = trivial;
      driverProcess = await startDriverProcess(s, t.url);
      const driver = driverProcess;
      await driver.warm(options.warmCalls);
      const round0 = outsideMs.length;
      await interleaved(s, `round ${k + 1}`, options.logins, options.warmup, async (a, b, counting, outsideFirst) => {
        const runOutside = async () => {
          const serverBefore = await s.cpuMs();
          const logged = { bytes: s.log.bytes, lines: s.log.lines };
          const { ms, cpuMs: client } = await outsideCallback(driver, s, a);
          const server = (await s.cpuMs()) - serverBefore;
          if (!counting) return;
          outsideMs.push(ms);
          serverCpu.push(server);
          clientCpu.push(client);
          outsideCpu.push(server + client);
          logBytes += s.log.bytes - logged.bytes;
          logLines += s.log.lines - logged.lines;
        };
        const runDirect = async () => {
          const serverBefore = await t.cpuMs();
          const { times, cpuMs: used } = await driver.direct(b);
          const server = (await t.cpuMs()) - serverBefore;
          if (!counting) return;
          directCpu.push(used + server);
          trivialCpu.push(server);
          directMs.push(sum(DIRECT_PARTS.map((p) => times[p])));
        };
        if (outsideFirst) {
          await runOutside();
          await runDirect();
        } else {
          await runDirect();
          await runOutside();
        }
      });
      const o = outsideMs.slice(round0);
      const d = directMs.slice(round0);
      perRound.push({
        outsideP50: round2(median(o)),
        directP50: round2(median(d)),
        ratio: round(median(o) / median(d), 3),
        cpuRatio: round(median(outsideCpu.slice(round0)) / median(directCpu.slice(round0)), 3),
      });
      progress(`callback: round ${k + 1}: ${ratio(perRound[k].ratio)} (CPU ${ratio(perRound[k].cpuRatio)})`);
    }
    const s = stack!;
    const driver = driverProcess!;

    // Where the time goes: the stack's own instruments on, a separate pass (not in the ratio).
    progress(`callback: ${options.splitLogins} callbacks with the stack process instrumented...`);
    await s.instrument(true);
    await s.since();
    const splits: OutsideSplit[] = [];
    const splitTotals: Array<{ outside: number; direct: number }> = [];
    let requestsSeen: Record<string, number> = {};
    await interleaved(s, 'instrumented', options.splitLogins, 1, async (a, b, counting) => {
      await s.since();
      const { ms: total } = await outsideCallback(driver, s, a);
      const { requests, http } = await s.since();
      const { times } = await driver.direct(b);
      if (!counting) return;
      for (const p of DIRECT_PARTS) parts[p].push(times[p]);
      splitTotals.push({ outside: total, direct: sum(DIRECT_PARTS.map((p) => times[p])) });
      const took = (suffix: string) =>
        sum(
          Object.entries(http)
            .filter(([path]) => path.endsWith(suffix))
            .flatMap(([, list]) => list),
        );
      requestsSeen = {};
      for (const r of requests) {
        const key = r.command.replace(/Command$/, '');
        requestsSeen[key] = (requestsSeen[key] ?? 0) + 1;
      }
      splits.push({
        total,
        server: took('/callback'),
        token: took('/token'),
        profile: took('/v1/identity/profile'),
        consumeAttempt: sum(requests.filter((r) => r.command === 'DeleteItemCommand').map((r) => r.ms)),
        saveTokens: sum(requests.filter((r) => r.command === 'UpdateItemCommand').map((r) => r.ms)),
      });
    });
    await s.instrument(false);

    let profile: CallbackLatencyResult['profile'];
    if (options.profileLogins > 0) {
      progress(`callback: CPU profiles of ${options.profileLogins} callbacks each way, interleaved...`);
      const outsideRuns: CpuBreakdown[] = [];
      const directRuns: CpuBreakdown[] = [];
      for (let i = 0; i < options.profileLogins; i++) {
        const a = await startLogin(s, `bench-profile-outside-${i}`);
        const b = await startLogin(s, `bench-profile-direct-${i}`);
        // One profile per request, alternating, so a busy moment of the machine hits both alike.
        const file = (name: string) => (i === 0 ? `${deps.resultsDir}/callback-${name}.cpuprofile` : undefined);
        await s.profileStart();
        await outsideCallback(driver, s, a);
        outsideRuns.push(await s.profileStop(file('server')));
        await driver.profileStart();
        await driver.direct(b);
        directRuns.push(await driver.profileStop(file('direct')));
      }
      profile = {
        requests: options.profileLogins,
        outside: meanBreakdown(outsideRuns),
        direct: meanBreakdown(directRuns),
        file: 'bench/results/callback-{server,direct}.cpuprofile',
      };
    }

    let adapters: AdapterCost[] | undefined;
    if (options.adapterCalls > 0) {
      progress(`callback: each I/O call through its adapter vs raw, ${options.adapterCalls} times each...`);
      adapters = await measureAdapterCosts(s, deps.dynamo, options.adapterCalls);
    }

    const counted = outsideMs.length;
    const pick = (key: keyof OutsideSplit) => spread(splits.map((x) => x[key]));
    return {
      logins: options.logins,
      rounds: options.rounds,
      warmup: options.warmup,
      outsideMs: spread(outsideMs),
      outsideParts: {
        server: pick('server'),
        consumeAttempt: pick('consumeAttempt'),
        token: pick('token'),
        profile: pick('profile'),
        saveTokens: pick('saveTokens'),
        handlerOwn: spread(splits.map((x) => x.server - x.consumeAttempt - x.token - x.profile - x.saveTokens)),
        httpAround: spread(splits.map((x) => x.total - x.server)),
      },
      splitLogins: options.splitLogins,
      split: {
        outsideMs: spread(splitTotals.map((x) => x.outside)),
        directMs: spread(splitTotals.map((x) => x.direct)),
      },
      directMs: spread(directMs),
      directParts: Object.fromEntries(DIRECT_PARTS.map((p) => [p, spread(parts[p])])) as Record<DirectPart, Spread>,
      cpuMs: {
        outside: spread(outsideCpu),
        direct: spread(directCpu),
        server: spread(serverCpu),
        client: spread(clientCpu),
        trivialServer: spread(trivialCpu),
      },
      ratio: round(median(outsideMs) / median(directMs), 3),
      perRound,
      pairRatio: round(median(outsideMs.map((ms, i) => ms / directMs[i])), 3),
      p10Ratio: round(quantile(outsideMs, 0.1) / quantile(directMs, 0.1), 3),
      cpuRatio: round(median(outsideCpu) / median(directCpu), 3),
      goal: CALLBACK_GOAL,
      dynamoRequestsPerCallback: requestsSeen,
      logBytesPerCallback: Math.round(logBytes / Math.max(1, counted)),
      logLinesPerCallback: round(logLines / Math.max(1, counted), 1),
      adapters,
      profile,
    };
  } finally {
    await driverProcess?.stop();
    await stack?.stop();
    trivial?.stop();
  }
}

const round2 = (v: number) => round(v, 2);

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
    `${result.rounds} rounds × ${result.logins} pairs (after ${result.warmup} warm-up each), interleaved. Each round starts the local ` +
      'stack in a process of its own, as `npm start` runs it (its log to a file), and a driver process, the client of both ' +
      'sides, times GET /callback after a real /login and sandbox sign-in, against the same I/O done directly (the same ' +
      'conditional DeleteItem, POST /token, GET profile, the same UpdateItem, one loopback round trip to a trivial server in ' +
      `a process of its own answering a page of the same size). Goal: outside / direct ≤ ${result.goal.toFixed(2)}x.`,
    '',
    table(
      ['', 'callback p50', 'callback p90', 'direct p50', 'direct p90', 'ratio of the medians'],
      [
        [
          '**wall time, all rounds**',
          `**${ms(result.outsideMs.p50)}**`,
          ms(result.outsideMs.p90),
          `**${ms(result.directMs.p50)}**`,
          ms(result.directMs.p90),
          `**${ratio(result.ratio)}**`,
        ],
        ...result.perRound.map((r, k) => [`round ${k + 1}`, ms(r.outsideP50), '', ms(r.directP50), '', ratio(r.ratio)]),
        [
          'process CPU per request',
          ms(result.cpuMs.outside.p50),
          ms(result.cpuMs.outside.p90),
          ms(result.cpuMs.direct.p50),
          ms(result.cpuMs.direct.p90),
          ratio(result.cpuRatio),
        ],
        ['of which the stack process', ms(result.cpuMs.server.p50), ms(result.cpuMs.server.p90), '', '', ''],
      ],
    ),
    '',
    `Ratio of the medians: **${ratio(result.ratio)}** wall (${within ? 'within' : '**over**'} the goal), ${ratio(result.cpuRatio)} CPU; ` +
      `median of the pairs' own ratios ${ratio(result.pairRatio)}, ratio of the 10th percentiles ${ratio(result.p10Ratio)}. ` +
      "CPU: the stack process (server, adapter, handler, SDK, fetch) plus the driver's HTTP client, against the driver's direct " +
      'I/O plus the trivial server. Per callback: DynamoDB requests ' +
      `${Object.entries(result.dynamoRequestsPerCallback)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ')}; ` +
      `${result.logLinesPerCallback} log lines, ${result.logBytesPerCallback} bytes at INFO.`,
    '',
    `Where the time goes: a separate pass of ${result.splitLogins} pairs with the stack process's instruments on (SDK middleware, ` +
      "diagnostics channels; not in the ratio above). The callback's I/O is timed at the wire, so building requests and reading " +
      "answers count in 'around the I/O'; the direct parts include them. Each part is its own median, so the parts do not add up " +
      'to the total exactly.',
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
          'total',
          ms(result.split.outsideMs.p50),
          ms(result.split.outsideMs.p90),
          ms(result.split.directMs.p50),
          ms(result.split.directMs.p90),
        ],
      ],
    ),
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
      `Where the CPU goes: ${requests} requests each way, one CPU profile per request (\`${result.profile.file}\`, the first pair): ` +
        "the stack process's for /callback, the driver's for the direct path; mean CPU ms per request by component (native code " +
        "counts for its JavaScript caller). The driver's client side of /callback, the trivial server, the sandbox provider and " +
        'DynamoDB Local are not in these profiles.',
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
