/**
 * An in-memory {@link SessionStore} for fast flow tests: attempts and links consumed once, checked
 * for expiry and (attempts) for the browser binding, with the same named refusals as the DynamoDB
 * store (test/integration/flow.test.ts covers that one against DynamoDB Local).
 */
import { RequestRejectedError } from '../../functions/core/errors';
import { hashBinding, type LoginAttempt } from '../../functions/core/login';
import type { ConnectLink, SessionStore } from '../../functions/adapters/session-store';

export class MemorySessionStore implements SessionStore {
  readonly attempts = new Map<string, LoginAttempt>();
  readonly links = new Map<string, ConnectLink>();
  /** Every call, as `method:key`, in order. */
  readonly calls: string[] = [];

  async putAttempt(attempt: LoginAttempt): Promise<void> {
    this.calls.push(`putAttempt:${attempt.state}`);
    if (this.attempts.has(attempt.state)) throw new Error('ConditionalCheckFailedException');
    this.attempts.set(attempt.state, attempt);
  }

  async consumeAttempt(state: string, bindingValue: string | undefined, now: number): Promise<LoginAttempt> {
    this.calls.push(`consumeAttempt:${state}`);
    const attempt = this.attempts.get(state);
    if (!attempt || attempt.expiresAt <= now) {
      throw new RequestRejectedError('unknown, expired or already used "state"', 'CALLBACK_INVALID_STATE');
    }
    if (!bindingValue || hashBinding(bindingValue) !== attempt.bindingHash) {
      throw new RequestRejectedError(
        bindingValue ? 'started in a different browser' : 'the sign-in cookie is missing',
        'CALLBACK_BROWSER_MISMATCH',
      );
    }
    this.attempts.delete(state);
    return attempt;
  }

  async putLink(link: ConnectLink): Promise<void> {
    this.calls.push(`putLink:${link.id}`);
    this.links.set(link.id, link);
  }

  async consumeLink(id: string, now: number): Promise<ConnectLink> {
    this.calls.push(`consumeLink:${id}`);
    const link = this.links.get(id);
    if (!link || link.expiresAt <= now) {
      throw new RequestRejectedError('this connect link is not valid', 'LOGIN_INVALID_SESSION');
    }
    this.links.delete(id);
    return link;
  }
}
