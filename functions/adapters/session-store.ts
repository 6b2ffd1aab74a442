/**
 * Login attempts (one per /login, consumed once at /callback) and connect links (one per link,
 * consumed once at /login), in the sessions table that token readers are never granted. Both are
 * consumed by a conditional delete, so two concurrent requests cannot both succeed. Expiry is
 * checked in the condition: DynamoDB's TTL deletes lazily, up to days late.
 */
import { DeleteItemCommand, type DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { RequestRejectedError } from '../core/errors';
import { hashBinding, type LoginAttempt } from '../core/login';
import { compact, isConditionFailure, type Item, n, num, s, str } from './dynamo';

/** A one-time connect link: logs a person in under the app's own user id. */
export interface ConnectLink {
  readonly id: string;
  readonly appUserId: string;
  readonly returnTo?: string;
  /** Epoch seconds. */
  readonly expiresAt: number;
}

/** What the login and callback flows need from the sessions table. */
export interface SessionStore {
  putAttempt(attempt: LoginAttempt): Promise<void>;
  /**
   * Atomically deletes and returns the attempt for `state`, only when it is unexpired and was started
   * by the browser presenting `bindingValue`. A different browser's request does not consume it.
   * @throws {RequestRejectedError} unknown, used or expired state; wrong browser
   */
  consumeAttempt(state: string, bindingValue: string | undefined, now: number): Promise<LoginAttempt>;
  putLink(link: ConnectLink): Promise<void>;
  /** @throws {RequestRejectedError} unknown, used or expired link */
  consumeLink(id: string, now: number): Promise<ConnectLink>;
}

const ATTEMPT = 'attempt#';
const LINK = 'link#';

/** DynamoDB implementation of {@link SessionStore}. */
export class DynamoSessionStore implements SessionStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly table: string,
  ) {}

  async putAttempt(attempt: LoginAttempt): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.table,
        Item: compact({
          id: s(ATTEMPT + attempt.state),
          codeVerifier: s(attempt.codeVerifier),
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

  async consumeAttempt(state: string, bindingValue: string | undefined, now: number): Promise<LoginAttempt> {
    // Without a cookie, compare against a hash no attempt can have, so the same single request decides.
    const presented = bindingValue ? hashBinding(bindingValue) : '-';
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
      if (existing && (num(existing, 'expiresAt') ?? 0) > now) {
        throw new RequestRejectedError(
          bindingValue
            ? 'this sign-in was started in a different browser: open the sign-in link again in this browser'
            : 'the sign-in cookie is missing (cookies blocked, or a different browser): open the sign-in link again',
          'CALLBACK_BROWSER_MISMATCH',
        );
      }
      throw invalidState();
    }
    if (!item) throw invalidState();
    return {
      state,
      codeVerifier: str(item, 'codeVerifier'),
      bindingHash: str(item, 'bindingHash') ?? '',
      appUserId: str(item, 'appUserId'),
      returnTo: str(item, 'returnTo'),
      expiresAt: num(item, 'expiresAt') ?? 0,
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

  async consumeLink(id: string, now: number): Promise<ConnectLink> {
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
      if (!item || !appUserId) throw invalidLink();
      return { id, appUserId, returnTo: str(item, 'returnTo'), expiresAt: num(item, 'expiresAt') ?? 0 };
    } catch (error) {
      if (isConditionFailure(error)) throw invalidLink();
      throw error;
    }
  }
}

function invalidState(): RequestRejectedError {
  return new RequestRejectedError(
    'this sign-in response is not valid here (unknown, expired or already used "state"): open the sign-in link again',
    'CALLBACK_INVALID_STATE',
  );
}

function invalidLink(): RequestRejectedError {
  return new RequestRejectedError(
    'this connect link is not valid (unknown, expired or already used): ask for a new link',
    'LOGIN_INVALID_SESSION',
  );
}
