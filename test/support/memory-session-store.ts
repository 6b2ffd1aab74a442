/**
 * An in-memory {@link SessionStore} for fast flow tests: login attempts, connect links and pending
 * connections, each consumed once, checked for expiry and (attempts) for the browser binding, with
 * the same outcomes as the DynamoDB store. It stands in for the store above the field encoding (the
 * code verifier and a pending connection's tokens are kept in plaintext).
 * test/integration/session-store-contract.test.ts runs one set of cases against both.
 */
import type { LoginAttempt } from '../../functions/core/login';
import type {
  ConnectLink,
  ConsumeAttemptOutcome,
  ConsumePendingOutcome,
  PendingConnection,
  SessionStore,
} from '../../functions/adapters/session-store';

/** A pending connection as the table holds it: closed ones keep a tombstone without tokens. */
interface PendingItem {
  readonly pending: PendingConnection;
  closedFor?: string;
}

export class MemorySessionStore implements SessionStore {
  readonly attempts = new Map<string, LoginAttempt>();
  readonly links = new Map<string, ConnectLink>();
  readonly pendings = new Map<string, PendingItem>();
  /** Every call, as `method:key`, in order. */
  readonly calls: string[] = [];

  async putAttempt(attempt: LoginAttempt): Promise<void> {
    this.calls.push(`putAttempt:${attempt.state}`);
    if (this.attempts.has(attempt.state)) throw new Error('ConditionalCheckFailedException');
    this.attempts.set(attempt.state, attempt);
  }

  async consumeAttempt(state: string, bindingHash: string | undefined, now: number): Promise<ConsumeAttemptOutcome> {
    this.calls.push(`consumeAttempt:${state}`);
    const attempt = this.attempts.get(state);
    if (!attempt || attempt.expiresAt <= now) return { outcome: 'invalid' };
    if (bindingHash !== attempt.bindingHash) return { outcome: 'wrong-browser' };
    this.attempts.delete(state);
    return { outcome: 'consumed', attempt };
  }

  async putLink(link: ConnectLink): Promise<void> {
    this.calls.push(`putLink:${link.id}`);
    if (this.links.has(link.id)) throw new Error('ConditionalCheckFailedException');
    this.links.set(link.id, link);
  }

  async peekLink(id: string, now: number): Promise<ConnectLink | undefined> {
    this.calls.push(`peekLink:${id}`);
    const link = this.links.get(id);
    return link && link.expiresAt > now ? link : undefined;
  }

  async consumeLink(id: string, now: number): Promise<ConnectLink | undefined> {
    this.calls.push(`consumeLink:${id}`);
    const link = this.links.get(id);
    if (!link || link.expiresAt <= now) return undefined;
    this.links.delete(id);
    return link;
  }

  async putPending(pending: PendingConnection): Promise<void> {
    this.calls.push(`putPending:${pending.codeHash}`);
    if (this.pendings.has(pending.codeHash)) throw new Error('ConditionalCheckFailedException');
    this.pendings.set(pending.codeHash, { pending });
  }

  async consumePending(codeHash: string, appUserId: string, now: number): Promise<ConsumePendingOutcome> {
    this.calls.push(`consumePending:${codeHash}`);
    const item = this.pendings.get(codeHash);
    if (!item) return { outcome: 'unknown' };
    if (item.closedFor !== undefined) {
      return { outcome: item.closedFor === item.pending.appUserId ? 'used' : 'cancelled' };
    }
    if (item.pending.expiresAt <= now) return { outcome: 'expired' };
    item.closedFor = appUserId;
    if (item.pending.appUserId !== appUserId) return { outcome: 'foreign', linkAppUserId: item.pending.appUserId };
    return { outcome: 'consumed', pending: item.pending };
  }

  async reopenPending(pending: PendingConnection, presenter: string): Promise<void> {
    this.calls.push(`reopenPending:${pending.codeHash}`);
    const item = this.pendings.get(pending.codeHash);
    if (item?.closedFor === presenter) delete item.closedFor;
  }
}
