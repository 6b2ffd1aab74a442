/**
 * The sessions table, which token readers are never granted: login attempts (one per /login,
 * consumed once at /callback), connect links (one per link, consumed once at /login) and pending
 * connections (one per connect-link sign-in, completed or cancelled once by `completeConnection`).
 * Each is consumed by one conditional write, so two concurrent requests cannot both succeed. Expiry
 * is checked in the condition: DynamoDB's TTL deletes lazily, up to days late.
 *
 * Secrets in an item (the PKCE code verifier) are stored encrypted, bound to the item's id
 * ({@link DynamoSessionStore.seal}); a verifier stored in plaintext before that is still read.
 */
import {
  type AttributeValue,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { KeyUnavailableError } from '../core/errors';
import type { LoginAttempt } from '../core/login';
import { LINK_KEY_PREFIX, type PlaintextFieldPolicy } from '../core/schema';
import type { TokenSet } from '../core/tokens';
import { compact, isConditionFailure, type Item, n, num, s, type StoreClient, storeClient, str } from './dynamo';
import { type FieldCipher, openField, sealField } from './field-cipher';

/** A one-time connect link: logs a person in under the app's own user id. */
export interface ConnectLink {
  readonly id: string;
  readonly appUserId: string;
  readonly returnTo?: string;
  /** Epoch seconds. */
  readonly expiresAt: number;
}

/**
 * What consuming a login attempt found: it was `consumed` (and is gone), it is live but bound to
 * another browser (`wrong-browser`: left in place for its own browser), or there is no live attempt
 * for that state (`invalid`: unknown, used or expired).
 */
export type ConsumeAttemptOutcome =
  | { readonly outcome: 'consumed'; readonly attempt: LoginAttempt }
  | { readonly outcome: 'wrong-browser' }
  | { readonly outcome: 'invalid' };

/**
 * A connect link's sign-in, waiting for the app to complete it: the grant, whose it is at Kroger,
 * and which app user the link was for. Keyed by a hash of the connect code.
 */
export interface PendingConnection {
  /** SHA-256 of the connect code (`hashConnectCode`): the code itself is never stored. */
  readonly codeHash: string;
  /** The link's app user: the only one who may complete it. */
  readonly appUserId: string;
  /** The Kroger profile id the grant belongs to. */
  readonly profileId: string;
  readonly tokens: TokenSet & { readonly refreshToken: string };
  /** Epoch seconds after which it can no longer be completed. */
  readonly expiresAt: number;
  /**
   * Epoch seconds after which DynamoDB's TTL may delete the closed item (its tombstone, with no
   * tokens), computed by the caller.
   */
  readonly closedRetention: number;
}

/**
 * What presenting a connect code found: it was `consumed` by its own app user (its tombstone stays,
 * without tokens), it was presented for another app user (`foreign`: now cancelled, tokens gone),
 * or it is `used` (completed before), `cancelled` (by an earlier foreign attempt), `expired` or
 * `unknown`. Only `consumed` carries the grant.
 */
export type ConsumePendingOutcome =
  | { readonly outcome: 'consumed'; readonly pending: PendingConnection }
  | { readonly outcome: 'foreign'; readonly linkAppUserId: string }
  | { readonly outcome: 'used' | 'cancelled' | 'expired' | 'unknown' };

/** What the login, callback and completion flows need from the sessions table. */
export interface SessionStore {
  putAttempt(attempt: LoginAttempt): Promise<void>;
  /**
   * Atomically deletes and returns the attempt for `state`, only when it is unexpired and its
   * binding hash is `bindingHash`. An attempt bound to another browser is not consumed.
   * @param bindingHash hash of the binding cookie the browser presented; undefined when it sent none
   */
  consumeAttempt(state: string, bindingHash: string | undefined, now: number): Promise<ConsumeAttemptOutcome>;
  putLink(link: ConnectLink): Promise<void>;
  /**
   * Reads an unexpired link without consuming it (a strongly consistent read), so /login can check
   * the link's return URL first; undefined when it is unknown, used or expired.
   */
  peekLink(id: string, now: number): Promise<ConnectLink | undefined>;
  /** Atomically deletes and returns an unexpired link; undefined when it is unknown, used or expired. */
  consumeLink(id: string, now: number): Promise<ConnectLink | undefined>;
  /** Stores a pending connection (a new code hash: refused by a condition if it somehow exists). */
  putPending(pending: PendingConnection): Promise<void>;
  /**
   * Closes the pending connection of `codeHash` in one conditional write, whoever presents it: it
   * must exist, be open and unexpired. The write removes the tokens and records who presented it;
   * the item as it was decides the outcome. So of two concurrent presentations exactly one closes
   * it, and a presentation for another app user than the link's cancels it for good.
   * @param appUserId the app user the code is presented for
   */
  consumePending(codeHash: string, appUserId: string, now: number): Promise<ConsumePendingOutcome>;
  /**
   * Undoes {@link consumePending} of `pending` by `presenter` at `closedAt` (its tokens back, open
   * again), only while the item is still the one that call closed: for a completion whose grant
   * provably was not stored, so the app's retry of the same code completes it. Best effort.
   */
  reopenPending(pending: PendingConnection, presenter: string, closedAt: number): Promise<void>;
}

const ATTEMPT = 'attempt#';
const LINK = LINK_KEY_PREFIX;
const PENDING = 'pending#';

/**
 * The attributes that hold a pending connection's tokens. Written only by `sealPendingTokens` and read
 * only by `openPendingTokens`, and removed when the connection is closed.
 */
export const PENDING_TOKEN_ATTRIBUTES = ['accessToken', 'refreshToken'] as const;

/** DynamoDB implementation of {@link SessionStore}. */
export class DynamoSessionStore implements SessionStore {
  /** Every call limited and its faults typed (`storeClient`). */
  private readonly client: StoreClient;

  /**
   * @param cipher encrypts secret attributes; used only by the methods that read or write one (a lazy
   *   cipher lets a connect-link creator, which never does, run without a key setting)
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

  /**
   * A secret attribute of the item `id` (its full key, e.g. `attempt#<state>`), encrypted and bound
   * to that item and attribute: the one seam for every secret this table stores.
   */
  private async seal(id: string, field: string, value: string | undefined): Promise<AttributeValue | undefined> {
    return s(await sealField(this.cipher, { purpose: 'sessions', field, id }, value));
  }

  /** Reads back what {@link seal} stored (or a plaintext value stored before encryption). */
  private open(id: string, field: string, item: Item): Promise<string | undefined> {
    return openField(this.cipher, { purpose: 'sessions', field, id }, str(item, field), this.plaintext);
  }

  async putAttempt(attempt: LoginAttempt): Promise<void> {
    const id = ATTEMPT + attempt.state;
    await this.client.send(
      new PutItemCommand({
        TableName: this.table,
        Item: compact({
          id: s(id),
          codeVerifier: await this.seal(id, 'codeVerifier', attempt.codeVerifier),
          bindingHash: s(attempt.bindingHash),
          appUserId: s(attempt.appUserId),
          returnTo: s(attempt.returnTo),
          expiresAt: n(attempt.expiresAt),
          ttl: n(attempt.expiresAt),
        }),
        // 256 random bits never collide in practice; the condition makes sure of it.
        ConditionExpression: 'attribute_not_exists(id)',
      }),
    );
  }

  async consumeAttempt(state: string, bindingHash: string | undefined, now: number): Promise<ConsumeAttemptOutcome> {
    // Without a cookie, compare against a hash no attempt can have, so the same single request decides.
    const presented = bindingHash ?? '-';
    let item: Item | undefined;
    try {
      const out = await this.client.send(
        new DeleteItemCommand({
          TableName: this.table,
          Key: { id: { S: ATTEMPT + state } },
          ConditionExpression: 'attribute_exists(id) AND expiresAt > :now AND bindingHash = :hash',
          ExpressionAttributeValues: { ':now': { N: String(now) }, ':hash': { S: presented } },
          ReturnValues: 'ALL_OLD',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      item = out.Attributes;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const existing = error.Item;
      return existing && (num(existing, 'expiresAt') ?? 0) > now
        ? { outcome: 'wrong-browser' }
        : { outcome: 'invalid' };
    }
    if (!item) return { outcome: 'invalid' };
    let codeVerifier: string | undefined;
    try {
      codeVerifier = await this.open(ATTEMPT + state, 'codeVerifier', item);
    } catch (error) {
      // The field key could not be used (KMS throttled or unreachable): put the attempt back as it
      // was, so the person's retry of the same callback still finds it. Nothing was sent anywhere.
      if (error instanceof KeyUnavailableError) await this.putBack(item);
      throw error;
    }
    return {
      outcome: 'consumed',
      attempt: {
        state,
        codeVerifier,
        bindingHash: str(item, 'bindingHash') ?? '',
        appUserId: str(item, 'appUserId'),
        returnTo: str(item, 'returnTo'),
        expiresAt: num(item, 'expiresAt') ?? 0,
      },
    };
  }

  /**
   * Puts a consumed login attempt back exactly as it was, unless an item with its id exists again.
   * Best effort: when it fails too, the attempt stays consumed and the person signs in again.
   */
  private async putBack(item: Item): Promise<void> {
    try {
      await this.client.send(
        new PutItemCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(id)' }),
      );
    } catch {
      // The error that made putting it back necessary is the one worth reporting.
    }
  }

  async reopenPending(pending: PendingConnection, presenter: string, closedAt: number): Promise<void> {
    let sealed: Item;
    try {
      sealed = await this.sealPendingTokens(PENDING + pending.codeHash, pending.tokens);
    } catch {
      return; // the key still cannot be used: the connection stays closed
    }
    await this.reopen(pending.codeHash, sealed, { N: String(pending.expiresAt) }, presenter, closedAt);
  }

  /**
   * Puts the sealed tokens of a connection this process closed back and opens it again, only while
   * the item is still the one that close left. One UpdateItem, the one action the complete function
   * has on this table. Best effort, as {@link putBack}.
   */
  private async reopen(
    codeHash: string,
    sealed: Item,
    ttl: AttributeValue | undefined,
    presenter: string,
    closedAt: number,
  ): Promise<void> {
    const restored = PENDING_TOKEN_ATTRIBUTES.filter((name) => sealed[name] !== undefined);
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { id: { S: PENDING + codeHash } },
          UpdateExpression: `SET ${[...restored.map((name) => `${name} = :${name}`), '#ttl = :ttl'].join(', ')} REMOVE closedAt, closedFor`,
          ConditionExpression: 'closedAt = :closedAt AND closedFor = :presenter',
          ExpressionAttributeNames: { '#ttl': 'ttl' },
          ExpressionAttributeValues: {
            ...Object.fromEntries(restored.map((name) => [`:${name}`, sealed[name]])),
            ':ttl': ttl ?? { N: String(closedAt) },
            ':closedAt': { N: String(closedAt) },
            ':presenter': { S: presenter },
          },
        }),
      );
    } catch {
      // As in putBack: the key's failure is what the app hears.
    }
  }

  async putLink(link: ConnectLink): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.table,
        Item: compact({
          id: s(LINK + link.id),
          appUserId: s(link.appUserId),
          returnTo: s(link.returnTo),
          expiresAt: n(link.expiresAt),
          ttl: n(link.expiresAt),
        }),
        ConditionExpression: 'attribute_not_exists(id)',
      }),
    );
  }

  async peekLink(id: string, now: number): Promise<ConnectLink | undefined> {
    const out = await this.client.send(
      new GetItemCommand({ TableName: this.table, Key: { id: { S: LINK + id } }, ConsistentRead: true }),
    );
    const item = out.Item;
    const appUserId = item && str(item, 'appUserId');
    const expiresAt = item ? (num(item, 'expiresAt') ?? 0) : 0;
    if (!item || !appUserId || expiresAt <= now) return undefined;
    return { id, appUserId, returnTo: str(item, 'returnTo'), expiresAt };
  }

  async consumeLink(id: string, now: number): Promise<ConnectLink | undefined> {
    try {
      const out = await this.client.send(
        new DeleteItemCommand({
          TableName: this.table,
          Key: { id: { S: LINK + id } },
          ConditionExpression: 'attribute_exists(id) AND expiresAt > :now',
          ExpressionAttributeValues: { ':now': { N: String(now) } },
          ReturnValues: 'ALL_OLD',
        }),
      );
      const item = out.Attributes;
      const appUserId = item && str(item, 'appUserId');
      if (!item || !appUserId) return undefined;
      return { id, appUserId, returnTo: str(item, 'returnTo'), expiresAt: num(item, 'expiresAt') ?? 0 };
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  async putPending(pending: PendingConnection): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.table,
        Item: compact({
          id: s(PENDING + pending.codeHash),
          appUserId: s(pending.appUserId),
          profileId: s(pending.profileId),
          ...(await this.sealPendingTokens(PENDING + pending.codeHash, pending.tokens)),
          tokenType: s(pending.tokens.tokenType),
          scope: s(pending.tokens.scope),
          tokenExpiresAt: n(pending.tokens.expiresAt),
          expiresAt: n(pending.expiresAt),
          closedRetention: n(pending.closedRetention),
          ttl: n(pending.expiresAt),
        }),
        ConditionExpression: 'attribute_not_exists(id)',
      }),
    );
  }

  async consumePending(codeHash: string, appUserId: string, now: number): Promise<ConsumePendingOutcome> {
    let old: Item | undefined;
    try {
      const out = await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { id: { S: PENDING + codeHash } },
          // Closed for whoever presents it: the tokens go, the tombstone says who presented it and
          // lives on (without tokens) so a second attempt hears "used" or "cancelled".
          UpdateExpression: `SET closedAt = :now, closedFor = :presenter, #ttl = closedRetention REMOVE ${PENDING_TOKEN_ATTRIBUTES.join(', ')}`,
          ConditionExpression: 'attribute_exists(id) AND attribute_not_exists(closedAt) AND expiresAt > :now',
          ExpressionAttributeNames: { '#ttl': 'ttl' },
          ExpressionAttributeValues: { ':now': { N: String(now) }, ':presenter': { S: appUserId } },
          ReturnValues: 'ALL_OLD',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      old = out.Attributes;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const existing = error.Item;
      if (!existing) return { outcome: 'unknown' };
      if (existing.closedAt !== undefined) {
        return { outcome: str(existing, 'closedFor') === str(existing, 'appUserId') ? 'used' : 'cancelled' };
      }
      return { outcome: 'expired' };
    }
    if (!old) return { outcome: 'unknown' };
    const linkAppUserId = str(old, 'appUserId') ?? '';
    if (linkAppUserId !== appUserId) return { outcome: 'foreign', linkAppUserId };
    let tokens: { accessToken: string; refreshToken: string };
    try {
      tokens = await this.openPendingTokens(PENDING + codeHash, old);
    } catch (error) {
      // The field key could not be used: reopen the connection exactly as it was (only if it is
      // still the one this call closed), so the app's retry of the same code completes it.
      if (error instanceof KeyUnavailableError) {
        const sealed = compact(Object.fromEntries(PENDING_TOKEN_ATTRIBUTES.map((name) => [name, old[name]])));
        await this.reopen(codeHash, sealed, old.ttl, appUserId, now);
      }
      throw error;
    }
    return {
      outcome: 'consumed',
      pending: {
        codeHash,
        appUserId,
        profileId: str(old, 'profileId') ?? '',
        tokens: {
          ...tokens,
          tokenType: str(old, 'tokenType') ?? 'bearer',
          scope: str(old, 'scope') ?? '',
          expiresAt: num(old, 'tokenExpiresAt') ?? 0,
        },
        expiresAt: num(old, 'expiresAt') ?? 0,
        closedRetention: num(old, 'closedRetention') ?? 0,
      },
    };
  }

  /**
   * The one place a pending connection's tokens become item attributes: both sealed under the field
   * key and bound to the pending item `id`, so they are at least as protected as the tokens table's
   * (where the access token stays readable for readers; here nobody reads it but the completion).
   */
  private async sealPendingTokens(
    id: string,
    tokens: Pick<TokenSet, 'accessToken'> & { refreshToken: string },
  ): Promise<Item> {
    const [accessToken, refreshToken] = await Promise.all([
      this.seal(id, 'accessToken', tokens.accessToken),
      this.seal(id, 'refreshToken', tokens.refreshToken),
    ]);
    return compact({ accessToken, refreshToken });
  }

  /** The one place those attributes become tokens again (see {@link sealPendingTokens}). */
  private async openPendingTokens(id: string, item: Item): Promise<{ accessToken: string; refreshToken: string }> {
    const [accessToken, refreshToken] = await Promise.all([
      this.open(id, 'accessToken', item),
      this.open(id, 'refreshToken', item),
    ]);
    return { accessToken: accessToken ?? '', refreshToken: refreshToken ?? '' };
  }
}
