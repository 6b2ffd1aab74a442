/**
 * A seeded fault-injection proxy for tests: a small loopback HTTP server put between an SDK client
 * and DynamoDB Local that forwards every request unchanged, except those a rule picks, which get
 * throttling, a 500, extra latency or a dropped connection. Rules match by operation (the
 * `X-Amz-Target` suffix) and, where needed, by the request body, fire for a share of matching
 * requests drawn from a seeded PRNG, and can stop after a number of faults, so a failing fault
 * test reproduces with its seed and can aim at exactly one write.
 *
 * Faults are injected BEFORE forwarding, because that is what DynamoDB does: a throttled request
 * never applies (the SDK retries it as safe), and a connection dropped before the request reached
 * DynamoDB leaves nothing behind; the proxy's 500 is likewise a failure before anything applied.
 * So a test can assert that nothing landed.
 * The one exception is `drop-after-forward`: the request is forwarded, DynamoDB Local's whole
 * answer is awaited (the write LANDED), and only then is the client's connection cut without an
 * answer. That is the outcome-unknown case a client must survive: it sees a connection error for
 * a write that in fact took effect.
 * Request bodies are buffered (DynamoDB's are small) so rules can look at them; answers are streamed.
 */
import { randomUUID } from 'node:crypto';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { seededRandom } from './random';

/** What a rule does to a request it fires on. */
export type FaultKind = 'throttle' | 'server-error' | 'latency' | 'drop' | 'drop-after-forward';

/** Every fault kind, in a fixed order (for stats). */
export const FAULT_KINDS: readonly FaultKind[] = ['throttle', 'server-error', 'latency', 'drop', 'drop-after-forward'];

/** One fault rule; rules are checked in order and the first that matches decides. */
export interface FaultRule {
  /** DynamoDB operations this rule applies to (the X-Amz-Target suffix: 'GetItem', 'UpdateItem', ...); all when absent. */
  readonly operations?: readonly string[];
  /** Extra match on the parsed JSON request body (e.g. aim at exactly one write by its UpdateExpression). */
  readonly match?: (body: Record<string, unknown>, operation: string) => boolean;
  /** Share of matching requests that get the fault, 0..1. */
  readonly share: number;
  readonly fault: FaultKind;
  /** For 'latency': delay before forwarding. */
  readonly latencyMs?: number;
  /** Stop after this many faults from this rule (e.g. exactly the first write). */
  readonly limit?: number;
}

/** What the proxy saw for one operation. */
export interface OperationStats {
  /** Requests received. */
  readonly requests: number;
  /** Requests sent on to DynamoDB Local (plain, `latency` and `drop-after-forward`). */
  readonly forwarded: number;
  /** Faults injected, by kind. */
  readonly faults: Record<FaultKind, number>;
}

/** Stats by operation; requests without an `X-Amz-Target` count under {@link NO_OPERATION}. */
export type FaultStats = Record<string, OperationStats>;

/** The operation name used for requests that carry no `X-Amz-Target` header. */
export const NO_OPERATION = '(none)';

/** A running proxy. */
export interface FaultProxy {
  /** `http://127.0.0.1:PORT`: the endpoint to give the SDK client. */
  readonly url: string;
  /** Replaces the rules at run time (faults on/off mid-test); `limit` counts start afresh. */
  setRules(rules: readonly FaultRule[]): void;
  /** A snapshot of the counts by operation. */
  stats(): FaultStats;
  resetStats(): void;
  /**
   * Closes the server and every connection. Rejects if a rule's `match` threw while running (the
   * request it was deciding had its connection dropped), so a broken rule fails its test.
   */
  stop(): Promise<void>;
}

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** DynamoDB Local's endpoint, e.g. `http://localhost:8000`. */
  readonly target: string;
  /** Seed of the PRNG that decides which matching requests get their fault. */
  readonly seed: number;
  readonly rules?: readonly FaultRule[];
  /** @default 0 - any free port */
  readonly port?: number;
}

const JSON_1_0 = 'application/x-amz-json-1.0';
const ERROR_PREFIX = 'com.amazonaws.dynamodb.v20120810#';

/** DynamoDB's own throttling answer (HTTP 400), word for word. */
const THROTTLE_BODY = JSON.stringify({
  __type: `${ERROR_PREFIX}ProvisionedThroughputExceededException`,
  message:
    'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
});

/** DynamoDB's internal error answer (HTTP 500). */
const SERVER_ERROR_BODY = JSON.stringify({
  __type: `${ERROR_PREFIX}InternalServerError`,
  message: 'Internal server error',
});

/** Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, so they are not passed on. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC32 of the body, as DynamoDB sends it in `x-amz-crc32` (zlib.crc32 needs Node 22). */
function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function passOn(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)));
}

function emptyStats(): { requests: number; forwarded: number; faults: Record<FaultKind, number> } {
  return {
    requests: 0,
    forwarded: 0,
    faults: Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>,
  };
}

function operationOf(req: IncomingMessage): string {
  const target = req.headers['x-amz-target'];
  if (typeof target !== 'string' || target === '') return NO_OPERATION;
  const dot = target.lastIndexOf('.');
  return dot === -1 ? target : target.slice(dot + 1);
}

function parseBody(body: Buffer): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function checkRules(rules: readonly FaultRule[]): void {
  for (const rule of rules) {
    if (!(rule.share >= 0 && rule.share <= 1))
      throw new RangeError(`fault rule "share" must be in 0..1, got ${rule.share}`);
    if (rule.fault === 'latency' && !(Number.isFinite(rule.latencyMs) && (rule.latencyMs as number) >= 0)) {
      throw new RangeError(`a "latency" fault rule needs "latencyMs" >= 0, got ${rule.latencyMs}`);
    }
    if (rule.limit !== undefined && !(Number.isInteger(rule.limit) && rule.limit >= 0)) {
      throw new RangeError(`fault rule "limit" must be an integer >= 0, got ${rule.limit}`);
    }
  }
}

/**
 * Starts a proxy on 127.0.0.1 in front of `target`. Matching requests draw from the PRNG in the
 * order their bodies finish arriving: the same seed and the same sequence of requests give the same
 * faults (concurrent requests are deterministic only as far as their arrival order is).
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  if (target.protocol !== 'http:') throw new RangeError(`fault proxy target must be http:, got "${target.protocol}"`);
  const random = seededRandom(options.seed);
  const agent = new Agent({ keepAlive: true });
  const timers = new Set<NodeJS.Timeout>();
  const matchErrors: unknown[] = [];
  let rules: readonly FaultRule[] = [];
  let firedByRule: number[] = [];
  let stats = new Map<string, ReturnType<typeof emptyStats>>();

  const setRules = (next: readonly FaultRule[]) => {
    checkRules(next);
    rules = [...next];
    firedByRule = rules.map(() => 0);
  };
  setRules(options.rules ?? []);

  const statsFor = (operation: string) => {
    let entry = stats.get(operation);
    if (!entry) stats.set(operation, (entry = emptyStats()));
    return entry;
  };

  /** The fault to inject, or undefined to forward as is. Draws once, for the first matching rule only. */
  const decide = (operation: string, body: Buffer): FaultRule | undefined => {
    let parsed: Record<string, unknown> | undefined;
    for (const [index, rule] of rules.entries()) {
      if (rule.operations && !rule.operations.includes(operation)) continue;
      if (rule.limit !== undefined && firedByRule[index] >= rule.limit) continue;
      if (rule.match && !rule.match((parsed ??= parseBody(body)), operation)) continue;
      if (random() >= rule.share) return undefined;
      firedByRule[index] += 1;
      return rule;
    }
    return undefined;
  };

  const answer = (res: ServerResponse, status: number, body: string) => {
    const bytes = Buffer.from(body, 'utf8');
    res.writeHead(status, {
      'content-type': JSON_1_0,
      'content-length': bytes.length,
      'x-amzn-requestid': randomUUID().replace(/-/g, '').toUpperCase(),
      'x-amz-crc32': String(crc32(bytes)),
    });
    res.end(bytes);
  };

  /** Sends the request on; `dropAfter` reads DynamoDB Local's whole answer, then cuts the client off. */
  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer, dropAfter: boolean) => {
    const upstream = httpRequest(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        // Unchanged, `host` and `authorization` included: the signature stays the client's own.
        headers: { ...passOn(req.headers), 'content-length': String(body.length) },
        agent,
      },
      (answerIn) => {
        if (dropAfter) {
          answerIn.resume();
          answerIn.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(answerIn.statusCode ?? 502, passOn(answerIn.headers));
        answerIn.pipe(res);
      },
    );
    // DynamoDB Local gone or the connection broken: the client sees a broken connection too.
    upstream.on('error', () => req.socket.destroy());
    upstream.end(body);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation = operationOf(req);
      const counts = statsFor(operation);
      counts.requests += 1;
      let rule: FaultRule | undefined;
      try {
        rule = decide(operation, body);
      } catch (error) {
        matchErrors.push(error);
        req.socket.destroy();
        return;
      }
      if (rule) counts.faults[rule.fault] += 1;
      switch (rule?.fault) {
        case 'throttle':
          return answer(res, 400, THROTTLE_BODY);
        case 'server-error':
          return answer(res, 500, SERVER_ERROR_BODY);
        case 'drop':
          return req.socket.destroy();
        case 'latency': {
          // Forwarded after the delay even if the client gave up meanwhile: a delayed request can still land.
          const timer = setTimeout(() => {
            timers.delete(timer);
            counts.forwarded += 1;
            forward(req, res, body, false);
          }, rule.latencyMs);
          timers.add(timer);
          return;
        }
        case 'drop-after-forward':
          counts.forwarded += 1;
          return forward(req, res, body, true);
        default:
          counts.forwarded += 1;
          return forward(req, res, body, false);
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    setRules,
    stats: () =>
      Object.fromEntries(
        [...stats].map(([operation, s]) => [
          operation,
          { requests: s.requests, forwarded: s.forwarded, faults: { ...s.faults } },
        ]),
      ),
    resetStats: () => {
      stats = new Map();
    },
    stop: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      agent.destroy();
      await closed;
      if (matchErrors.length > 0) {
        throw new Error(`fault proxy: a rule's "match" threw on ${matchErrors.length} request(s)`, {
          cause: matchErrors[0],
        });
      }
    },
  };
}
