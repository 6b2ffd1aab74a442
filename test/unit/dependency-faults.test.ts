/**
 * Each AWS dependency without a local twin (Secrets Manager, KMS, EventBridge, Lambda Invoke) when
 * it is throttled, failing or unreachable: the adapter raises that dependency's typed error, says
 * whether trying again may help (`retryable`) and, where the fault says, after how long; a refusal
 * an operator must fix (not found, access denied, key disabled) is not retryable. The clients are
 * mocked with aws-sdk-client-mock (no local twin); DynamoDB's faults run through real DynamoDB Local
 * in test/integration/faults.test.ts.
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { DecryptCommand, DisabledException, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { InvokeCommand, LambdaClient, TooManyRequestsException } from '@aws-sdk/client-lambda';
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { createEventPublisher } from '../../functions/adapters/event-bus';
import { kmsKeyProvider } from '../../functions/adapters/kms-key';
import { createSecretSource } from '../../functions/adapters/secret';
import {
  EventsUnavailableError,
  FunctionUnavailableError,
  KeyUnavailableError,
  ProviderUnavailableError,
  RefreshFunctionError,
  SecretUnavailableError,
  StoreUnavailableError,
} from '../../functions/core/errors';
import { createRemoteReader, errorFromCode, lambdaInvoker } from '../../functions/reader/remote';
import { activeRecord, MemoryTokenStore } from '../support/memory-token-store';
import { captureLogger } from '../support/logs';

const secrets = mockClient(SecretsManagerClient);
const kms = mockClient(KMSClient);
const eventBridge = mockClient(EventBridgeClient);
const lambda = mockClient(LambdaClient);

/** An AWS error as the SDK throws it: a name, a status, a message that may quote the request. */
const awsError = (name: string, status: number) =>
  Object.assign(new Error(`${name}: request details`), { name, $metadata: { httpStatusCode: status } });

const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555';

beforeEach(() => {
  secrets.reset();
  kms.reset();
  eventBridge.reset();
  lambda.reset();
});

describe('Secrets Manager (the client secret)', () => {
  const source = () =>
    createSecretSource({ kind: 'secrets-manager', secretId: 'arn:secret' }, { client: new SecretsManagerClient({}) });

  it('is retryable when throttled, naming Secrets Manager, without the SDK message', async () => {
    secrets.on(GetSecretValueCommand).rejects(awsError('ThrottlingException', 400));

    const error = await source()().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(SecretUnavailableError);
    expect(error).toMatchObject({
      code: 'SECRET_UNAVAILABLE',
      dependency: 'secretsmanager',
      retryable: true,
      retryAfterSeconds: 1,
    });
    expect((error as Error).message).toContain('ThrottlingException');
    expect((error as Error).message).not.toContain('request details');
  });

  it('is retryable when Secrets Manager fails on its side', async () => {
    secrets.on(GetSecretValueCommand).rejects(awsError('InternalServiceError', 500));
    await expect(source()()).rejects.toMatchObject({ code: 'SECRET_UNAVAILABLE', retryable: true });
  });

  it('is not retryable when the secret does not exist: an operator must act', async () => {
    secrets.on(GetSecretValueCommand).rejects(new ResourceNotFoundException({ message: 'gone', $metadata: {} }));
    await expect(source()()).rejects.toMatchObject({ code: 'SECRET_UNAVAILABLE', retryable: false });
  });
});

describe('KMS (the field key)', () => {
  const provider = () => kmsKeyProvider(KEY_ARN, new KMSClient({}));

  it('is retryable when GenerateDataKey is throttled', async () => {
    kms.on(GenerateDataKeyCommand).rejects(awsError('ThrottlingException', 400));

    const error = await provider()
      .generateDataKey('tokens')
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(KeyUnavailableError);
    expect(error).toMatchObject({ code: 'KEY_UNAVAILABLE', dependency: 'kms', retryable: true, retryAfterSeconds: 1 });
  });

  it('is retryable when Decrypt meets a failing KMS', async () => {
    kms.on(DecryptCommand).rejects(awsError('KMSInternalException', 500));
    await expect(provider().decryptDataKey(Buffer.from('blob'), 'sessions')).rejects.toMatchObject({
      code: 'KEY_UNAVAILABLE',
      retryable: true,
    });
  });

  it('is not retryable when the key is disabled: trying again fails the same way', async () => {
    kms.on(DecryptCommand).rejects(new DisabledException({ message: 'disabled', $metadata: {} }));
    await expect(provider().decryptDataKey(Buffer.from('blob'), 'sessions')).rejects.toMatchObject({
      code: 'KEY_UNAVAILABLE',
      retryable: false,
    });
  });
});

describe('EventBridge (events, best effort)', () => {
  const publisher = () => createEventPublisher({ EVENT_BUS_NAME: 'bus' }, captureLogger().logger);

  it('is a retryable EventsUnavailableError when the bus is throttled', async () => {
    eventBridge.on(PutEventsCommand).rejects(awsError('ThrottlingException', 400));

    const error = await publisher()
      .publish('token.connected', { userId: 'u', at: 'x' })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(EventsUnavailableError);
    expect(error).toMatchObject({ code: 'EVENTS_UNAVAILABLE', dependency: 'eventbridge', retryable: true });
  });

  it('says whether a failed entry may be taken later: throttled yes, refused no', async () => {
    eventBridge
      .on(PutEventsCommand)
      .resolvesOnce({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException' }] })
      .resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'AccessDeniedException' }] });
    const bus = publisher();

    await expect(bus.publish('token.connected', { userId: 'u', at: 'x' })).rejects.toMatchObject({ retryable: true });
    await expect(bus.publish('token.connected', { userId: 'u', at: 'x' })).rejects.toMatchObject({
      retryable: false,
      message: 'EventBridge refused the event (AccessDeniedException)',
    });
  });
});

describe('Lambda Invoke (the remote reader and its refresh function)', () => {
  const invoke = () => lambdaInvoker('broker-refresh', { region: 'eu-west-1' });

  it('is a retryable FunctionUnavailableError when Lambda throttles the invoke', async () => {
    lambda
      .on(InvokeCommand)
      .rejects(new TooManyRequestsException({ message: 'Rate exceeded', $metadata: { httpStatusCode: 429 } }));

    const error = await invoke()({ userId: 'u' }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(FunctionUnavailableError);
    expect(error).toMatchObject({ code: 'FUNCTION_UNAVAILABLE', dependency: 'lambda', retryable: true });
  });

  it('is a retryable FunctionUnavailableError when the function itself crashed or timed out, not Kroger', async () => {
    lambda
      .on(InvokeCommand)
      .resolves({ StatusCode: 200, FunctionError: 'Unhandled', Payload: new Uint8Array() as never });

    const error = await invoke()({ userId: 'u' }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(FunctionUnavailableError);
    expect(error).not.toBeInstanceOf(ProviderUnavailableError);
    expect((error as Error).message).toBe('the function broker-refresh failed (Unhandled); try again');
  });

  it.each([
    ['STORE_UNAVAILABLE', StoreUnavailableError, true],
    ['KEY_UNAVAILABLE', KeyUnavailableError, true],
    ['SECRET_UNAVAILABLE', SecretUnavailableError, true],
    ['PROVIDER_UNAVAILABLE', ProviderUnavailableError, true],
  ] as const)(
    'turns the refresh function’s %s back into its class, retryable, with the wait',
    (code, ErrorClass, retryable) => {
      const error = errorFromCode('u', { code, message: 'm', retryable, retryAfterSeconds: 3 });
      expect(error).toBeInstanceOf(ErrorClass);
      expect(error).toMatchObject({ code, retryable: true, retryAfterSeconds: 3 });
    },
  );

  it('keeps a key the function said was disabled not retryable', () => {
    expect(errorFromCode('u', { code: 'KEY_UNAVAILABLE', message: 'm' })).toMatchObject({ retryable: false });
  });

  it('keeps whether a code this reader does not know is retryable', () => {
    const error = errorFromCode('u', { code: 'SOMETHING_NEWER', message: 'm', retryable: true, retryAfterSeconds: 2 });
    expect(error).toBeInstanceOf(RefreshFunctionError);
    expect(error).toMatchObject({ remoteCode: 'SOMETHING_NEWER', retryable: true, retryAfterSeconds: 2 });
    expect(errorFromCode('u', { code: 'SOMETHING_NEWER', message: 'm' })).toMatchObject({ retryable: false });
  });

  describe('the remote reader, when DynamoDB is throttled', () => {
    const throttledRead = () =>
      new StoreUnavailableError('DynamoDB GetItem failed: throttled (ProvisionedThroughputExceededException)', {
        operation: 'GetItem',
        retryAfterSeconds: 1,
      });

    it('reads again within its wait and answers, with no refresh invoked for a fresh token', async () => {
      const store = new MemoryTokenStore();
      const now = Math.floor(Date.now() / 1000);
      store.seed(activeRecord('u', { tokensIssuedAt: now, expiresAt: now + 1800 }));
      const read = store.getForReader.bind(store);
      let reads = 0;
      store.getForReader = async (userId) => {
        reads++;
        if (reads <= 2) throw throttledRead();
        return read(userId);
      };
      const invoke = jest.fn();

      const token = await createRemoteReader(store, invoke).getAccessToken('u');

      expect(token.accessToken).toBe('u-access-1');
      expect(reads).toBe(3);
      expect(invoke).not.toHaveBeenCalled();
    });

    it('ends in the retryable StoreUnavailableError when the store stays throttled past its wait', async () => {
      jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
      try {
        const store = new MemoryTokenStore();
        store.getForReader = async () => {
          throw throttledRead();
        };
        const settled = createRemoteReader(store, jest.fn())
          .getAccessToken('u')
          .catch((e: unknown) => e);
        await jest.runAllTimersAsync();
        await expect(settled).resolves.toMatchObject({ code: 'STORE_UNAVAILABLE', retryable: true });
      } finally {
        jest.useRealTimers();
      }
    });
  });
});
