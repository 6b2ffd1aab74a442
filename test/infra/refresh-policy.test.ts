/**
 * The refresh policy in the construct and the stack: one setting, handed to every function that
 * writes a user's place in the refresher's schedule (the callback, the refresh function, the
 * scheduled refresher, the connect-link completion), validated like the other refresher settings,
 * from props or context.
 * No bundling: nothing here looks at code assets.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { readRefreshPolicy } from '../../functions/core/config';
import { KrogerTokenBroker, type KrogerTokenBrokerProps } from '../../infra/broker';
import { KrogerTokenBrokerStack } from '../../infra/stack';
import { environmentOf, newApp } from './support';

const SCHEDULE_WRITERS = ['Callback', 'Refresh', 'Refresher', 'Complete'];

function synth(props: Partial<KrogerTokenBrokerProps>): Template {
  const stack = new Stack(newApp({}, false), 'PolicyTest', { env: { account: '123456789012', region: 'eu-west-1' } });
  new KrogerTokenBroker(stack, 'Broker', { clientId: 'client', ...props });
  return Template.fromStack(stack);
}

describe('Construct: KrogerTokenBroker', () => {
  describe('Feature: refresh policy', () => {
    it('is eager with a week of keep-alive by default, the same for every writer of schedules', () => {
      const template = synth({});
      for (const name of SCHEDULE_WRITERS) {
        const env = environmentOf(template, `Broker/${name}`);
        expect({ name, REFRESH_POLICY: env.REFRESH_POLICY, KEEP_ALIVE_SECONDS: env.KEEP_ALIVE_SECONDS }).toEqual({
          name,
          REFRESH_POLICY: 'eager',
          KEEP_ALIVE_SECONDS: '604800',
        });
      }
    });

    it('passes on-read and the keep-alive in seconds to every writer of schedules, in a form the handlers read', () => {
      const template = synth({ refreshPolicy: 'on-read', keepAliveInterval: Duration.days(3) });
      for (const name of SCHEDULE_WRITERS) {
        expect(readRefreshPolicy(environmentOf(template, `Broker/${name}`))).toEqual({
          name: 'on-read',
          keepAliveSeconds: 3 * 86_400,
        });
      }
    });

    it('leaves the login function without it: /login writes no schedule', () => {
      const env = environmentOf(synth({ refreshPolicy: 'on-read' }), 'Broker/Login');
      expect(env.REFRESH_POLICY).toBeUndefined();
      expect(env.KEEP_ALIVE_SECONDS).toBeUndefined();
    });

    it.each<[string, Partial<KrogerTokenBrokerProps>, RegExp]>([
      [
        'an unknown policy',
        { refreshPolicy: 'lazy' as never },
        /invalid "refreshPolicy": must be one of eager, on-read, got "lazy"/,
      ],
      [
        'a keep-alive under an hour',
        { keepAliveInterval: Duration.minutes(30) },
        /invalid "keepAliveInterval": must be whole seconds between 1 hour and 30 days, got 30 minutes/,
      ],
      [
        'a keep-alive over 30 days',
        { keepAliveInterval: Duration.days(31) },
        /invalid "keepAliveInterval": must be whole seconds between 1 hour and 30 days/,
      ],
      [
        'a keep-alive in fractions of a second',
        { keepAliveInterval: Duration.millis(3_600_500) },
        /invalid "keepAliveInterval": must be whole seconds/,
      ],
    ])('refuses %s, naming the prop', (_name, props, message) => {
      expect(() => synth(props)).toThrow(message);
    });
  });
});

describe('Stack: KrogerTokenBrokerStack', () => {
  describe('Feature: refresh policy from context (refreshPolicy, keepAlive in days)', () => {
    it('reads refreshPolicy and keepAlive (days)', () => {
      const app = newApp({ clientId: 'x', refreshPolicy: 'on-read', keepAlive: '14' }, false);
      const env = environmentOf(
        Template.fromStack(new KrogerTokenBrokerStack(app, 'PolicyContext')),
        'Broker/Refresher',
      );
      expect(env).toMatchObject({ REFRESH_POLICY: 'on-read', KEEP_ALIVE_SECONDS: String(14 * 86_400) });
    });

    it('lets the broker.refreshPolicy prop win over context', () => {
      const app = newApp({ clientId: 'x', refreshPolicy: 'on-read' }, false);
      const stack = new KrogerTokenBrokerStack(app, 'PolicyProps', { broker: { refreshPolicy: 'eager' } });
      expect(environmentOf(Template.fromStack(stack), 'Broker/Callback').REFRESH_POLICY).toBe('eager');
    });

    it.each([
      [{ refreshPolicy: 'sometimes' }, /context "refreshPolicy" must be one of eager, on-read, got "sometimes"/],
      [{ keepAlive: '0' }, /context "keepAlive" must be a whole number between 1 and 30, got "0"/],
      [{ keepAlive: 45 }, /context "keepAlive" must be a whole number between 1 and 30, got 45/],
      [{ keepAlive: '7d' }, /context "keepAlive" must be a whole number between 1 and 30/],
    ])('rejects bad context %j with a message naming the key', (context, message) => {
      const app = newApp({ clientId: 'x', ...context }, false);
      expect(() => new KrogerTokenBrokerStack(app, 'BadPolicyContext')).toThrow(message);
    });
  });
});
