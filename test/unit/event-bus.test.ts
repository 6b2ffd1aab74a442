import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { createEventPublisher, EVENT_SOURCE } from '../../functions/adapters/event-bus';
import { captureLogger } from '../support/logs';

// EventBridge has no local twin: the publisher is tested against a mocked client.
const eventBridge = mockClient(EventBridgeClient);

describe('Function: createEventPublisher', () => {
  beforeEach(() => {
    eventBridge.reset();
  });

  it('puts one event on the configured bus with the type as detail-type and no token', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: '1' }] });
    const publisher = createEventPublisher({ EVENT_BUS_NAME: 'broker-bus' }, captureLogger().logger);

    await publisher.publish('token.reauth_required', {
      userId: 'u1',
      reason: 'invalid_grant',
      at: '2026-01-01T00:00:00Z',
    });

    const input = eventBridge.commandCalls(PutEventsCommand)[0].args[0].input;
    expect(input.Entries).toEqual([
      {
        EventBusName: 'broker-bus',
        Source: EVENT_SOURCE,
        DetailType: 'token.reauth_required',
        Detail: JSON.stringify({ userId: 'u1', reason: 'invalid_grant', at: '2026-01-01T00:00:00Z' }),
      },
    ]);
  });

  it('throws when EventBridge refuses the entry, so the caller can log it', async () => {
    eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'AccessDenied' }] });
    const publisher = createEventPublisher({ EVENT_BUS_NAME: 'broker-bus' }, captureLogger().logger);

    await expect(publisher.publish('token.connected', { userId: 'u1', at: 'x' })).rejects.toThrow(/AccessDenied/);
  });

  it('logs instead of publishing when no bus is configured', async () => {
    const logs = captureLogger();
    await createEventPublisher({}, logs.logger).publish('token.connected', { userId: 'u9', at: 'x' });

    expect(eventBridge.calls()).toHaveLength(0);
    expect(logs.text()).toContain('"token.connected"');
  });
});
