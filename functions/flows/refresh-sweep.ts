/**
 * The refresh sweep, run by the scheduled refresher: keeps stored tokens fresh before anyone asks. It finds due users through
 * the sparse `due` index (one query per shard, paged), never a table scan, so its reads grow with
 * the number of due users, not the number of users. Each user goes through the same single-flight
 * path as readers; one user's failure never stops the batch, and every attempt is recorded on the
 * item (a failing user is pushed back, so it cannot starve the others). Who is due is decided where
 * the schedule is written, by the refresh policy (`eager`: before the access token expires;
 * `on-read`: the keep-alive of an unread grant), so the sweep itself is the same for both.
 */
import {
  ClientCredentialsRejectedError,
  ProviderUnavailableError,
  ReauthRequiredError,
  RefreshInProgressError,
  UnknownUserError,
} from '../core/errors';
import {
  METRICS_DIMENSION,
  METRICS_NAMESPACE,
  REFRESH_SHARDS,
  REFRESHER_METRICS,
  REFRESHER_SETTINGS,
} from '../core/schema';
import type { Logger } from '../adapters/logger';
import type { TokenStore } from '../adapters/token-store';
import type { TokenRefresher } from './single-flight-refresh';

/** Options of one run. */
export interface RefreshSweepOptions {
  /** Refresh users due (by their schedule, or expiring under `eager`) within this many seconds. @default 600 */
  readonly windowSeconds?: number;
  /** Users refreshed at once. @default 8 */
  readonly concurrency?: number;
  /** Index page size. @default 100 */
  readonly pageSize?: number;
  /** Epoch ms after which no new user is started (leave room before the Lambda timeout). */
  readonly deadlineMs?: number;
}

/** Counts of one run, logged and published as metrics. */
export interface RefreshSweepReport {
  due: number;
  refreshed: number;
  /** Already fresh when read (another process refreshed it after the index was read). */
  fresh: number;
  failed: number;
  reauth: number;
  /** Left for the next run because the deadline came. */
  deferred: number;
  /**
   * Not tried because the provider refused the broker's client credentials earlier in the run: every
   * user would be refused the same way (their grants are kept; the next run tries again).
   */
  skipped: number;
  /** False when the deadline stopped the run before it had read the whole index. */
  complete: boolean;
  /** DynamoDB read capacity units consumed by the run's index queries. */
  readUnits: number;
  durationMs: number;
}

/** What a run needs. */
export interface RefreshSweepDeps {
  readonly tokens: Pick<TokenStore, 'queryDue'>;
  readonly refresher: TokenRefresher;
  readonly logger: Logger;
  readonly nowMs?: () => number;
}

/** Runs `worker` over `items` with at most `limit` at once. */
async function forEachLimited<T>(items: T[], limit: number, worker: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await worker(items[next++]);
  });
  await Promise.all(lanes);
}

/** Refreshes every user due within the window; see the module documentation. */
export async function runRefreshSweep(
  deps: RefreshSweepDeps,
  options: RefreshSweepOptions = {},
): Promise<RefreshSweepReport> {
  const nowMs = deps.nowMs ?? Date.now;
  const started = nowMs();
  const window = options.windowSeconds ?? REFRESHER_SETTINGS.REFRESH_WINDOW_SECONDS.default;
  const dueBy = Math.floor(started / 1000) + window;
  const report: RefreshSweepReport = {
    due: 0,
    refreshed: 0,
    fresh: 0,
    failed: 0,
    reauth: 0,
    deferred: 0,
    skipped: 0,
    readUnits: 0,
    durationMs: 0,
    complete: true,
  };

  const pastDeadline = () => options.deadlineMs !== undefined && nowMs() >= options.deadlineMs;
  // A user whose refresh failed is pushed back by a minute or so, which can still be inside the
  // window: later pages of the same run may list it again. One attempt per user per run.
  const seen = new Set<string>();
  let clientRejected = false;

  const refreshOne = async (userId: string): Promise<void> => {
    if (seen.has(userId)) return;
    seen.add(userId);
    if (pastDeadline()) {
      report.deferred++;
      return;
    }
    if (clientRejected) {
      report.skipped++;
      return;
    }
    try {
      report[await deps.refresher.refreshIfDue(userId, { marginSeconds: window, dueBy })]++;
    } catch (error) {
      if (error instanceof ReauthRequiredError) report.reauth++;
      else if (error instanceof ClientCredentialsRejectedError) {
        report.failed++;
        clientRejected = true; // logged and counted by the refresher
      } else if (error instanceof UnknownUserError) {
        report.fresh++; // disconnected since the query
      } else {
        report.failed++;
        if (!(error instanceof ProviderUnavailableError || error instanceof RefreshInProgressError)) {
          deps.logger.error('scheduled refresh failed unexpectedly', { userId, error });
        }
      }
    }
  };

  shards: for (let shard = 0; shard < REFRESH_SHARDS; shard++) {
    let cursor: string | undefined;
    do {
      // Past the deadline, stop reading the index too: the next run starts from the top anyway.
      if (pastDeadline()) {
        report.complete = false;
        break shards;
      }
      const page = await deps.tokens.queryDue(shard, dueBy, { limit: options.pageSize ?? 100, cursor });
      report.readUnits += page.readUnits;
      const fresh = page.userIds.filter((id) => !seen.has(id));
      report.due += fresh.length;
      await forEachLimited(fresh, options.concurrency ?? REFRESHER_SETTINGS.REFRESH_CONCURRENCY.default, refreshOne);
      cursor = page.cursor;
    } while (cursor);
  }

  report.durationMs = nowMs() - started;
  deps.logger.metrics('scheduled refresh finished', {
    ...report,
    // CloudWatch Embedded Metric Format: the same line becomes metrics, with no extra API call.
    _aws: {
      Timestamp: nowMs(),
      CloudWatchMetrics: [
        {
          Namespace: METRICS_NAMESPACE,
          // Per function, so two broker stacks in one account and region keep their metrics apart.
          Dimensions: [[METRICS_DIMENSION]],
          Metrics: REFRESHER_METRICS.map((Name) => ({ Name, Unit: 'Count' })),
        },
      ],
    },
  });
  return report;
}
