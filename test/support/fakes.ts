/**
 * Scriptable stand-ins for the provider client and the event publisher, for fast flow tests. The
 * real ones are tested against the sandbox provider (integration) and aws-sdk-client-mock (unit).
 */
import type { TokenSet } from '../../functions/core/tokens';
import type { BrokerEventDetail, BrokerEventType, EventPublisher } from '../../functions/adapters/events';
import type { ProviderClient } from '../../functions/adapters/provider';

/** A provider whose answers a test sets; counts every call. */
export class FakeProvider implements ProviderClient {
  readonly calls = { exchangeCode: 0, refresh: 0, fetchProfileId: 0, revoke: 0 };
  /** Arguments of each refresh, in order. */
  readonly refreshed: Array<{ refreshToken: string; scope: string }> = [];
  /** Epoch seconds of the tokens it issues. */
  now = 1_000_000;
  profileId = 'profile-1';
  private issued = 0;

  /** What the next code exchange does; by default, issues fresh tokens. */
  onExchange: (input: Parameters<ProviderClient['exchangeCode']>[0]) => Promise<TokenSet> = async () => this.issue();
  /** What the next refresh does; by default, issues fresh rotated tokens. */
  onRefresh: (input: { refreshToken: string; scope: string }) => Promise<TokenSet> = async () => this.issue();

  /** A new token set: `access-N`, `refresh-N`, valid 30 minutes from {@link now}. */
  issue(overrides: Partial<TokenSet> = {}): TokenSet {
    this.issued++;
    return {
      accessToken: `access-${this.issued}`,
      refreshToken: `refresh-${this.issued}`,
      tokenType: 'bearer',
      scope: 'product.compact profile.compact',
      expiresAt: this.now + 1800,
      ...overrides,
    };
  }

  async exchangeCode(input: Parameters<ProviderClient['exchangeCode']>[0]): Promise<TokenSet> {
    this.calls.exchangeCode++;
    return this.onExchange(input);
  }

  async refresh(input: { refreshToken: string; scope: string }): Promise<TokenSet> {
    this.calls.refresh++;
    this.refreshed.push(input);
    return this.onRefresh(input);
  }

  async fetchProfileId(): Promise<string> {
    this.calls.fetchProfileId++;
    return this.profileId;
  }

  /** The refresh tokens presented for revocation, in order. */
  readonly revoked: string[] = [];
  /** The time limit each revocation was given (`undefined`: the configured one). */
  readonly revokeTimeouts: Array<number | undefined> = [];
  /** What the next revocation does; by default it succeeds (`false`: no revocation endpoint). */
  onRevoke: (refreshToken: string) => Promise<boolean> = async () => true;

  async revoke(refreshToken: string, timeoutMs?: number): Promise<boolean> {
    this.calls.revoke++;
    this.revoked.push(refreshToken);
    this.revokeTimeouts.push(timeoutMs);
    return this.onRevoke(refreshToken);
  }

  /** Total calls of any kind: zero means the provider was never contacted. */
  total(): number {
    return Object.values(this.calls).reduce((a, b) => a + b, 0);
  }
}

/** Records published events; `failing` makes every publish reject, as an EventBridge outage would. */
export class RecordingEvents implements EventPublisher {
  readonly published: Array<{ type: BrokerEventType; detail: BrokerEventDetail }> = [];
  failing = false;

  async publish(type: BrokerEventType, detail: BrokerEventDetail): Promise<void> {
    if (this.failing) throw new Error('EventBridge is unavailable');
    this.published.push({ type, detail });
  }
}
