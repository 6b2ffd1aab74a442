/**
 * Login attempts (one per /login, consumed once at /callback) and connect links (one per link,
 * consumed once at /login), in the sessions table that token readers are never granted. Both are
 * consumed by a conditional delete, so two concurrent requests cannot both succeed. Expiry is
 * checked in the condition: DynamoDB's TTL deletes lazily, up to days late.
 *
 * Secrets in an item (the PKCE code verifier) are stored encrypted, bound to the item's id
 * ({@link DynamoSessionStore.seal}); a verifier stored in plaintext before that is still read.
 */
import { type AttributeValue, DeleteItemCommand, type DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { LoginAttempt } from '../core/login';
import { compact, isConditionFailure, type Item, n, num, s, str } from './dynamo';
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

/** What the login and callback flows need from the sessions table. */
export interface SessionStore {
  putAttempt(attempt: LoginAttempt): Promise<void>;
  /**
   * Atomically deletes and returns the attempt for `state`, only when it is unexpired and its
   * binding hash is `bindingHash`. An attempt bound to another browser is not consumed.
   * @param bindingHash hash of the binding cookie the browser presented; undefined when it sent none
   */
  consumeAttempt(state: string, bindingHash: string | undefined, now: number): Promise<ConsumeAttemptOutcome>;
  putLink(link: ConnectLink): Promise<void>;
  /** Atomically deletes and returns an unexpired link; undefined when it is unknown, used or expired. */
  consumeLink(id: string, now: number): Promise<ConnectLink | undefined>;
}

const ATTEMPT = 'attempt#';
const LINK = 'link#';

/** DynamoDB implementation of {@link SessionStore}. */
export class DynamoSessionStore implements SessionStore {
  /**
   * @param cipher encrypts secret attributes; used only by the methods that read or write one (a lazy
   *   cipher lets a connect-link creator, which never does, run without a key setting)
   */
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
    private readonly cipher: FieldCipher,
  ) {}

  /**
   * A secret attribute of the item `id` (its full key, e.g. `attempt#<state>`), encrypted and bound
   * to that item and attribute: the one seam for every secret this table stores.
   */
  private async seal(id: string, field: string, value: string | undefined): Promise<AttributeValue | undefined> {
    return s(await sealField(this.cipher, { purpose: 'sessions', field, id }, value));
  }

  /** Reads back what {@link seal} stored (or a plaintext value stored before encryption). */
  private open(id: string, field: string, item: Item): Promise<string | undefined> {
    return openField(this.cipher, { purpose: 'sessions', field, id }, str(item, field));
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
    return {
      outcome: 'consumed',
      attempt: {
        state,
        codeVerifier: await this.open(ATTEMPT + state, 'codeVerifier', item),
        bindingHash: str(item, 'bindingHash') ?? '',
        appUserId: str(item, 'appUserId'),
        returnTo: str(item, 'returnTo'),
        expiresAt: num(item, 'expiresAt') ?? 0,
      },
    };
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
}
