/**
 * The tokens table: one item per user. Every write that changes tokens is conditional on `version`
 * (an older pair can never overwrite a newer one), the refresh lease is taken and released with
 * conditions on its owner, every write made under the lease is fenced on its owner too (a holder
 * whose lease was taken over cannot write), and lost races come back as {@link ConcurrentUpdateError}
 * ({@link LeaseLostError} when the lease was taken over).
 *
 * The refresh token is stored encrypted (an envelope bound to the user id, adapters/field-cipher.ts)
 * and decrypted here on read: callers see plaintext, a scan of the table sees none. A refresh token
 * stored in plaintext before encryption is still read, and sealed by the next write of tokens.
 */
import {
  type AttributeValue,
  DeleteItemCommand,
  GetItemCommand,
  QueryCommand,
  ScanCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { ConcurrentUpdateError, LeaseLostError, UnknownUserError } from '../core/errors';
import type { FailureRecord, RefreshSchedule, TokenRecord, TokenSet, TokenStatus } from '../core/tokens';
import type { FieldContext } from '../core/envelope';
import { DUE_INDEX, type PlaintextFieldPolicy, READER_ATTRIBUTES } from '../core/schema';
import { isConditionFailure, type Item, n, num, s, type StoreClient, storeClient, str } from './dynamo';
import { type FieldCipher, openField, sealField } from './field-cipher';

/** The part of the item a token reader reads. */
export type ReaderRecord = Pick<TokenRecord, (typeof READER_ATTRIBUTES)[number]>;

/** How a grant came to be stored: a completed connect link, or the public /login. */
export type BoundBy = 'connect' | 'public';

/** What a login's save did (see {@link TokenStore.saveLogin}). */
export type SaveLoginOutcome =
  { readonly outcome: 'saved'; readonly previousStatus?: TokenStatus } | { readonly outcome: 'link-bound' };

/** A summary row for listings: never a token value. */
export interface TokenSummary {
  readonly userId: string;
  readonly profileId?: string;
  readonly status: TokenStatus;
  readonly expiresAt: number;
  readonly scope?: string;
  readonly statusReason?: string;
  readonly consecutiveFailures: number;
  /** How the grant was bound; absent on items stored before the mark existed. */
  readonly boundBy?: BoundBy;
}

/** What the flows, the reader and the refresher need from the tokens table. */
export interface TokenStore {
  /**
   * The whole item, its refresh token decrypted.
   * @throws {DecryptionFailedError} | {KeyUnavailableError} the refresh token could not be decrypted
   */
  get(userId: string): Promise<TokenRecord | undefined>;
  /**
   * Reads only {@link READER_ATTRIBUTES}: what a token reader is allowed to see (IAM holds readers
   * to this projection), never the refresh token.
   */
  getForReader(userId: string): Promise<ReaderRecord | undefined>;
  /**
   * Stores tokens from a login: replaces any previous ones, makes the user `active` again, clears the
   * lease and failure counters, and marks how the grant was bound (`boundBy`). A `public` save is
   * conditional: it never replaces an item bound through a connect link (marked `connect`, or
   * holding another Kroger profile than the one signing in, as items from before the mark do).
   * @returns `saved` with the status the user had before (undefined for a new user), or
   * `link-bound` when a public save met a link-bound item (nothing was written)
   */
  saveLogin(input: {
    userId: string;
    profileId: string;
    tokens: TokenSet & { refreshToken: string };
    now: number;
    /** Where the user goes in the due index (computed by the caller from core rules). */
    schedule: RefreshSchedule;
    /** `connect`: a completed connect link (the app's own user); `public`: /login without a link. */
    boundBy: BoundBy;
  }): Promise<SaveLoginOutcome>;
  /**
   * Takes the refresh lease when it is free, expired or already ours, and returns the item as it is
   * now (a strongly consistent read).
   * @throws {UnknownUserError} no such user
   * @throws {ConcurrentUpdateError} another owner holds an unexpired lease
   * @throws {DecryptionFailedError} | {KeyUnavailableError} the refresh token could not be decrypted
   *   (the lease is released again)
   */
  acquireLease(userId: string, owner: string, nowMs: number, leaseMs: number): Promise<TokenRecord>;
  /**
   * Takes the refresh lease as {@link acquireLease} does, but only while the token expires before
   * `staleBefore` (epoch seconds): when another process has refreshed it meanwhile, no lease is taken
   * and the item comes back as it is (`taken: false`), in the same request, without its refresh token
   * (empty: it is not decrypted, since no refresh follows).
   * @throws {UnknownUserError} no such user
   * @throws {ConcurrentUpdateError} the token is stale and another owner holds an unexpired lease
   */
  acquireLeaseIfStale(
    userId: string,
    owner: string,
    nowMs: number,
    leaseMs: number,
    staleBefore: number,
  ): Promise<{ readonly taken: boolean; readonly record: TokenRecord }>;
  /** Releases the lease if `owner` still holds it; a no-op otherwise. */
  releaseLease(userId: string, owner: string): Promise<void>;
  /**
   * Writes refreshed tokens if the item is still at `version` and `owner` still holds the lease;
   * keeps the stored refresh token when the response carried none. Clears the lease and the failure
   * counter. A write that finds these very tokens already stored (an earlier attempt whose answer was
   * lost) returns the item as stored.
   * @throws {LeaseLostError} another process took the lease over
   * @throws {ConcurrentUpdateError} the item changed since it was read (a login, a disconnect)
   */
  saveRefresh(input: {
    userId: string;
    /** The lease owner the write is fenced on. */
    owner: string;
    version: number;
    tokens: TokenSet;
    now: number;
    /** The next scheduled refresh (computed by the caller from core rules). */
    nextRefreshAt: number;
  }): Promise<TokenRecord>;
  /**
   * Records a transient refresh failure on the item if it is still at `version` and `owner` holds
   * the lease: the count of failures in a row and the pushed-back next attempt, both computed by the
   * caller. Releases the lease.
   * @throws {LeaseLostError} another process took the lease over
   * @throws {ConcurrentUpdateError} the item changed since it was read
   */
  recordFailure(
    input: { userId: string; owner: string; version: number; reason: string; now: number } & FailureRecord,
  ): Promise<void>;
  /**
   * Marks the user `reauth_required` if the item is still at `version` and `owner` holds the lease,
   * takes them out of the refresher's index, and lets DynamoDB's TTL delete the item after
   * `deleteAfter` (epoch seconds).
   * @throws {LeaseLostError} another process took the lease over
   * @throws {ConcurrentUpdateError} the item changed since it was read
   */
  markReauthRequired(input: {
    userId: string;
    owner: string;
    version: number;
    reason: string;
    now: number;
    deleteAfter: number;
  }): Promise<void>;
  /**
   * Deletes the user's item; returns it as it was, or undefined if there was none.
   * @param options.withRefreshToken decrypt the deleted refresh token, to revoke it (needs the field
   *   key) @default true; false returns it as `''` and needs no key: the item is deleted either way
   */
  delete(userId: string, options?: { withRefreshToken?: boolean }): Promise<TokenRecord | undefined>;
  /** Lists users (a scan: for the operator's CLI, not for request paths). */
  list(): AsyncIterable<TokenSummary>;
  /**
   * One page of user ids due by `before` in one shard of the sparse index.
   * @param options.cursor where the previous page ended (its `cursor`); opaque
   */
  queryDue(shard: number, before: number, options?: { limit?: number; cursor?: string }): Promise<DuePage>;
}

/** One page of due users. */
export interface DuePage {
  readonly userIds: string[];
  /** Opaque position of the next page; absent on the last one. */
  readonly cursor?: string;
  /** Read capacity the query consumed (for the refresher's report). */
  readonly readUnits: number;
}

function toRecord(item: Item): TokenRecord {
  return {
    userId: str(item, 'userId') ?? '',
    profileId: str(item, 'profileId') ?? '',
    accessToken: str(item, 'accessToken') ?? '',
    refreshToken: str(item, 'refreshToken') ?? '',
    tokenType: str(item, 'tokenType') ?? 'bearer',
    scope: str(item, 'scope') ?? '',
    expiresAt: num(item, 'expiresAt') ?? 0,
    version: num(item, 'version') ?? 0,
    status: (str(item, 'status') as TokenStatus | undefined) ?? 'active',
    statusReason: str(item, 'statusReason'),
    statusAt: num(item, 'statusAt'),
    leaseOwner: str(item, 'leaseOwner'),
    leaseUntil: num(item, 'leaseUntil'),
    lastRefreshAt: num(item, 'lastRefreshAt'),
    lastRefreshError: str(item, 'lastRefreshError'),
    consecutiveFailures: num(item, 'consecutiveFailures') ?? 0,
    tokensIssuedAt: num(item, 'tokensIssuedAt') ?? 0,
    nextRefreshAt: num(item, 'nextRefreshAt'),
    createdAt: num(item, 'createdAt') ?? 0,
    updatedAt: num(item, 'updatedAt') ?? 0,
    boundBy: str(item, 'boundBy') as TokenRecord['boundBy'],
  };
}

/**
 * Builds an update from named values: `SET` for defined ones, `REMOVE` for listed ones, with
 * placeholder names so reserved words (`status`, `ttl`) need no special care.
 */
function update(
  set: Record<string, AttributeValue | undefined>,
  options: { remove?: string[]; raw?: string[]; values?: Record<string, AttributeValue>; condition?: string } = {},
) {
  const names: Record<string, string> = {};
  const values: Record<string, AttributeValue> = { ...options.values };
  const sets: string[] = [...(options.raw ?? [])];
  for (const [key, value] of Object.entries(set)) {
    if (value === undefined) continue;
    names[`#${key}`] = key;
    values[`:${key}`] = value;
    sets.push(`#${key} = :${key}`);
  }
  for (const key of options.remove ?? []) names[`#${key}`] = key;
  for (const match of `${sets.join(' ')} ${options.condition ?? ''}`.matchAll(/#(\w+)/g)) {
    names[`#${match[1]}`] = match[1];
  }
  const removes = (options.remove ?? []).map((k) => `#${k}`);
  const expression = `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`;
  return {
    UpdateExpression: expression,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
    ...(options.condition ? { ConditionExpression: options.condition } : {}),
  };
}

/** Where a user's refresh token is stored: what its ciphertext is bound to. */
const refreshTokenField = (userId: string): FieldContext => ({ purpose: 'tokens', field: 'refreshToken', id: userId });

/** DynamoDB implementation of {@link TokenStore}. */
export class DynamoTokenStore implements TokenStore {
  /** Every call limited and its faults typed (`storeClient`). */
  private readonly client: StoreClient;

  /**
   * @param cipher encrypts and decrypts refresh tokens; used only by the methods that read or write
   *   one (a lazy cipher lets a token reader, which never does, run without a key setting)
   */
  constructor(
    client: StoreClient,
    private readonly table: string,
    private readonly cipher: FieldCipher,
    /** What a secret field stored before encryption gets on read. @default 'accept' */
    private readonly plaintext: PlaintextFieldPolicy = 'accept',
  ) {
    this.client = storeClient(client);
  }

  /** The record of a stored item with its refresh token decrypted. */
  private async decrypted(item: Item): Promise<TokenRecord> {
    const record = toRecord(item);
    const refreshToken = await openField(
      this.cipher,
      refreshTokenField(record.userId),
      str(item, 'refreshToken'),
      this.plaintext,
    );
    return { ...record, refreshToken: refreshToken ?? '' };
  }

  /**
   * Runs a write conditional on the item's version (and, given `fence.owner`, on the lease owner),
   * turning a lost race into a named error: {@link LeaseLostError} when another process holds the
   * lease now, else {@link ConcurrentUpdateError}. The write must ask for
   * `ReturnValuesOnConditionCheckFailure: 'ALL_OLD'`.
   * @param fence.landed true when the item as found is this very write, applied by an earlier attempt
   * whose answer was lost: then the found item is returned as `{ landed }`
   */
  private async conditional<T>(
    userId: string,
    fence: { owner?: string; landed?: (found: Item) => boolean },
    write: () => Promise<T>,
  ): Promise<T | { landed: Item }> {
    try {
      return await write();
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const found = error.Item;
      if (found && fence.landed?.(found)) return { landed: found };
      const holder = found && str(found, 'leaseOwner');
      if (fence.owner !== undefined && holder !== undefined && holder !== fence.owner) {
        throw new LeaseLostError(userId, { cause: error });
      }
      throw new ConcurrentUpdateError(`the tokens of user "${userId}" changed during the refresh`, { cause: error });
    }
  }

  async get(userId: string): Promise<TokenRecord | undefined> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { userId: { S: userId } },
        ConsistentRead: true,
      }),
    );
    return out.Item ? this.decrypted(out.Item) : undefined;
  }

  async getForReader(userId: string): Promise<ReaderRecord | undefined> {
    const out = await this.client.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { userId: { S: userId } },
        ConsistentRead: true,
        ProjectionExpression: READER_ATTRIBUTES.map((name) => `#${name}`).join(', '),
        ExpressionAttributeNames: Object.fromEntries(READER_ATTRIBUTES.map((name) => [`#${name}`, name])),
      }),
    );
    if (!out.Item) return undefined;
    const { userId: id, accessToken, expiresAt, scope, tokenType, status, statusReason, version } = toRecord(out.Item);
    return { userId: id, accessToken, expiresAt, scope, tokenType, status, statusReason, version };
  }

  async saveLogin({
    userId,
    profileId,
    tokens,
    now,
    schedule,
    boundBy,
  }: Parameters<TokenStore['saveLogin']>[0]): Promise<SaveLoginOutcome> {
    const refreshToken = await sealField(this.cipher, refreshTokenField(userId), tokens.refreshToken);
    const command = new UpdateItemCommand({
      TableName: this.table,
      Key: { userId: { S: userId } },
      ...update(
        {
          profileId: s(profileId),
          accessToken: s(tokens.accessToken),
          refreshToken: s(refreshToken),
          tokenType: s(tokens.tokenType),
          scope: s(tokens.scope),
          expiresAt: n(tokens.expiresAt),
          status: s('active'),
          statusAt: n(now),
          consecutiveFailures: n(0),
          tokensIssuedAt: n(now),
          updatedAt: n(now),
          refreshShard: n(schedule.shard),
          nextRefreshAt: n(schedule.nextRefreshAt),
          boundBy: s(boundBy),
        },
        {
          raw: ['#version = if_not_exists(#version, :zero) + :one', '#createdAt = if_not_exists(#createdAt, :now)'],
          values: {
            ':zero': { N: '0' },
            ':one': { N: '1' },
            ':now': { N: String(now) },
            ...(boundBy === 'public' ? { ':connect': { S: 'connect' } } : {}),
          },
          remove: ['statusReason', 'leaseOwner', 'leaseUntil', 'lastRefreshError', 'ttl'],
          // A completion writes the app's own user unconditionally. A public login writes only a
          // new user or a public one of the same Kroger profile: never a link-bound item, marked
          // or (from before the mark) holding another profile under this id.
          condition:
            boundBy === 'public'
              ? 'attribute_not_exists(#userId) OR (#profileId = :profileId AND (attribute_not_exists(#boundBy) OR #boundBy <> :connect))'
              : undefined,
        },
      ),
      ReturnValues: 'UPDATED_OLD',
    });
    try {
      const out = await this.client.send(command);
      return { outcome: 'saved', previousStatus: out.Attributes?.status?.S as TokenStatus | undefined };
    } catch (error) {
      if (boundBy === 'public' && isConditionFailure(error)) return { outcome: 'link-bound' };
      throw error;
    }
  }

  async acquireLease(userId: string, owner: string, nowMs: number, leaseMs: number): Promise<TokenRecord> {
    return (await this.takeLease(userId, owner, nowMs, leaseMs)).record;
  }

  acquireLeaseIfStale(
    userId: string,
    owner: string,
    nowMs: number,
    leaseMs: number,
    staleBefore: number,
  ): Promise<{ readonly taken: boolean; readonly record: TokenRecord }> {
    return this.takeLease(userId, owner, nowMs, leaseMs, staleBefore);
  }

  /** The lease update; with `staleBefore`, only while the token expires before it. */
  private async takeLease(
    userId: string,
    owner: string,
    nowMs: number,
    leaseMs: number,
    staleBefore?: number,
  ): Promise<{ readonly taken: boolean; readonly record: TokenRecord }> {
    const free =
      'attribute_exists(userId) AND (attribute_not_exists(#leaseUntil) OR #leaseUntil < :nowMs OR #leaseOwner = :leaseOwner)';
    let item: Item;
    try {
      const out = await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { userId: { S: userId } },
          ...update(
            { leaseOwner: s(owner), leaseUntil: n(nowMs + leaseMs) },
            {
              values: {
                ':nowMs': { N: String(nowMs) },
                ...(staleBefore === undefined ? {} : { ':staleBefore': { N: String(staleBefore) } }),
              },
              condition: staleBefore === undefined ? free : `${free} AND #expiresAt <= :staleBefore`,
            },
          ),
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      item = out.Attributes ?? {};
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      if (!error.Item) throw new UnknownUserError(userId);
      // Refreshed by another process meanwhile: the item came back with the failure, no lease needed
      // (and its refresh token, which nobody will use, is not decrypted).
      const found = { ...toRecord(error.Item), refreshToken: '' };
      if (staleBefore !== undefined && found.expiresAt > staleBefore) return { taken: false, record: found };
      throw new ConcurrentUpdateError(`the refresh lease for user "${userId}" is held by another process`);
    }
    try {
      return { taken: true, record: await this.decrypted(item) };
    } catch (error) {
      // Nobody can refresh with a token that does not decrypt: free the lease now rather than when it
      // runs out. Best effort: the decryption failure is what the caller must hear.
      await this.releaseLease(userId, owner).catch(() => undefined);
      throw error;
    }
  }

  async releaseLease(userId: string, owner: string): Promise<void> {
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { userId: { S: userId } },
          UpdateExpression: 'REMOVE #leaseOwner, #leaseUntil',
          ConditionExpression: '#leaseOwner = :owner',
          ExpressionAttributeNames: { '#leaseOwner': 'leaseOwner', '#leaseUntil': 'leaseUntil' },
          ExpressionAttributeValues: { ':owner': { S: owner } },
        }),
      );
    } catch (error) {
      // Someone else's lease now (ours expired) or the item is gone: nothing of ours to release.
      if (!isConditionFailure(error)) throw error;
    }
  }

  async saveRefresh({
    userId,
    owner,
    version,
    tokens,
    now,
    nextRefreshAt,
  }: Parameters<TokenStore['saveRefresh']>[0]): Promise<TokenRecord> {
    const refreshToken = await sealField(this.cipher, refreshTokenField(userId), tokens.refreshToken);
    // An attempt whose answer was lost (a timeout) may have been applied: then these tokens are stored.
    const landed = (found: Item) =>
      num(found, 'version') === version + 1 && str(found, 'accessToken') === tokens.accessToken;
    const out = await this.conditional(userId, { owner, landed }, () =>
      this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { userId: { S: userId } },
          ...update(
            {
              accessToken: s(tokens.accessToken),
              // Kept as stored when the provider did not rotate it (RFC 6749 section 6).
              refreshToken: s(refreshToken),
              tokenType: s(tokens.tokenType),
              scope: s(tokens.scope),
              expiresAt: n(tokens.expiresAt),
              version: n(version + 1),
              consecutiveFailures: n(0),
              lastRefreshAt: n(now),
              tokensIssuedAt: n(now),
              updatedAt: n(now),
              nextRefreshAt: n(nextRefreshAt),
            },
            {
              remove: ['leaseOwner', 'leaseUntil', 'lastRefreshError'],
              values: { ':expected': { N: String(version) }, ':active': { S: 'active' }, ':owner': { S: owner } },
              condition: '#version = :expected AND #status = :active AND #leaseOwner = :owner',
            },
          ),
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      ),
    );
    const item = ('landed' in out ? out.landed : out.Attributes) ?? {};
    // The token just written is known: no need to decrypt it again.
    return tokens.refreshToken === undefined
      ? this.decrypted(item)
      : { ...toRecord(item), refreshToken: tokens.refreshToken };
  }

  async recordFailure({
    userId,
    owner,
    version,
    reason,
    now,
    failures,
    nextRefreshAt,
  }: Parameters<TokenStore['recordFailure']>[0]): Promise<void> {
    // One write: the count was computed from the item as read, which the version condition pins.
    await this.conditional(userId, { owner }, () =>
      this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { userId: { S: userId } },
          ...update(
            {
              consecutiveFailures: n(failures),
              lastRefreshAt: n(now),
              lastRefreshError: s(reason),
              updatedAt: n(now),
              nextRefreshAt: n(nextRefreshAt),
            },
            {
              remove: ['leaseOwner', 'leaseUntil'],
              values: { ':expected': { N: String(version) }, ':active': { S: 'active' }, ':owner': { S: owner } },
              condition: '#version = :expected AND #status = :active AND #leaseOwner = :owner',
            },
          ),
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      ),
    );
  }

  async markReauthRequired({
    userId,
    owner,
    version,
    reason,
    now,
    deleteAfter,
  }: Parameters<TokenStore['markReauthRequired']>[0]): Promise<void> {
    await this.conditional(userId, { owner }, () =>
      this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { userId: { S: userId } },
          ...update(
            {
              status: s('reauth_required'),
              statusReason: s(reason),
              statusAt: n(now),
              lastRefreshAt: n(now),
              lastRefreshError: s(reason),
              updatedAt: n(now),
              version: n(version + 1),
              // A dead grant is deleted by DynamoDB's TTL after 90 days unless the user signs in again
              // (a login removes `ttl`); until then `list` shows who must reconnect.
              ttl: n(deleteAfter),
            },
            {
              // Out of the sparse index: the refresher never looks at this user again.
              remove: ['leaseOwner', 'leaseUntil', 'refreshShard', 'nextRefreshAt'],
              values: { ':expected': { N: String(version) }, ':owner': { S: owner } },
              condition: '#version = :expected AND #leaseOwner = :owner',
            },
          ),
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      ),
    );
  }

  async delete(userId: string, options: { withRefreshToken?: boolean } = {}): Promise<TokenRecord | undefined> {
    const out = await this.client.send(
      new DeleteItemCommand({ TableName: this.table, Key: { userId: { S: userId } }, ReturnValues: 'ALL_OLD' }),
    );
    if (!out.Attributes) return undefined;
    return options.withRefreshToken === false
      ? { ...toRecord(out.Attributes), refreshToken: '' }
      : this.decrypted(out.Attributes);
  }

  async *list(): AsyncIterable<TokenSummary> {
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.client.send(
        new ScanCommand({
          TableName: this.table,
          ProjectionExpression:
            'userId, profileId, #status, expiresAt, #scope, statusReason, consecutiveFailures, boundBy',
          ExpressionAttributeNames: { '#status': 'status', '#scope': 'scope' },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of out.Items ?? []) {
        const record = toRecord(item);
        yield {
          userId: record.userId,
          profileId: record.profileId || undefined,
          status: record.status,
          expiresAt: record.expiresAt,
          scope: record.scope || undefined,
          statusReason: record.statusReason,
          consecutiveFailures: record.consecutiveFailures,
          ...(record.boundBy ? { boundBy: record.boundBy } : {}),
        };
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
  }

  async queryDue(shard: number, before: number, options: { limit?: number; cursor?: string } = {}): Promise<DuePage> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: DUE_INDEX,
        KeyConditionExpression: 'refreshShard = :shard AND nextRefreshAt <= :before',
        ExpressionAttributeValues: { ':shard': { N: String(shard) }, ':before': { N: String(before) } },
        Limit: options.limit,
        ExclusiveStartKey: options.cursor === undefined ? undefined : decodeCursor(options.cursor),
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    return {
      userIds: (out.Items ?? []).map((item) => str(item, 'userId')).filter((id): id is string => Boolean(id)),
      cursor: out.LastEvaluatedKey && encodeCursor(out.LastEvaluatedKey),
      readUnits: out.ConsumedCapacity?.CapacityUnits ?? 0,
    };
  }
}

/** A page position as an opaque string: callers above the adapter never see DynamoDB's key shape. */
function encodeCursor(key: Record<string, AttributeValue>): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): Record<string, AttributeValue> {
  return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<string, AttributeValue>;
}
