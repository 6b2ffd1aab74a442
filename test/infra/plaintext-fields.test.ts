/**
 * `plaintextFields`: whether the functions still read a secret field stored before encryption. The
 * default leaves every function's environment as it was; `refuse` reaches every function, in a form
 * the handlers read, from props or context, and anything else fails synth naming the setting.
 * No bundling: nothing here looks at code assets.
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { readPlaintextFieldPolicy } from '../../functions/core/config';
import { KrogerTokenBroker, type KrogerTokenBrokerProps } from '../../infra/broker';
import { KrogerTokenBrokerStack } from '../../infra/stack';
import { environmentOf, newApp } from './support';

/** Every broker function: each reads or writes sealed fields. */
const FUNCTIONS = ['Login', 'Callback', 'Refresh', 'Refresher', 'Complete'];

function synth(props: Partial<KrogerTokenBrokerProps>): Template {
  const stack = new Stack(newApp({}, false), 'PlaintextTest', {
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  new KrogerTokenBroker(stack, 'Broker', { clientId: 'client', ...props });
  return Template.fromStack(stack);
}

describe('Construct: KrogerTokenBroker', () => {
  describe('Feature: plaintextFields', () => {
    it('accepts plaintext fields by default without adding a variable, so an upgrade changes no function', () => {
      const template = synth({});
      for (const name of FUNCTIONS) {
        const env = environmentOf(template, `Broker/${name}`);
        expect({ name, FIELD_PLAINTEXT: env.FIELD_PLAINTEXT }).toEqual({ name, FIELD_PLAINTEXT: undefined });
        expect(readPlaintextFieldPolicy(env)).toBe('accept');
      }
      expect(environmentOf(synth({ plaintextFields: 'accept' }), 'Broker/Refresh').FIELD_PLAINTEXT).toBeUndefined();
    });

    it('hands refuse to every function, in a form the handlers read', () => {
      const template = synth({ plaintextFields: 'refuse' });
      for (const name of FUNCTIONS) {
        expect({ name, policy: readPlaintextFieldPolicy(environmentOf(template, `Broker/${name}`)) }).toEqual({
          name,
          policy: 'refuse',
        });
      }
    });

    it('refuses another value, naming the prop', () => {
      expect(() => synth({ plaintextFields: 'ignore' as never })).toThrow(
        /invalid "plaintextFields": must be one of accept, refuse, got "ignore"/,
      );
    });
  });
});

describe('Stack: KrogerTokenBrokerStack', () => {
  describe('Feature: plaintextFields from context', () => {
    it('reads the plaintextFields context key', () => {
      const app = newApp({ clientId: 'x', plaintextFields: 'refuse' }, false);
      const template = Template.fromStack(new KrogerTokenBrokerStack(app, 'PlaintextContext'));
      expect(environmentOf(template, 'Broker/Callback').FIELD_PLAINTEXT).toBe('refuse');
    });

    it('lets the broker.plaintextFields prop win over context', () => {
      const app = newApp({ clientId: 'x', plaintextFields: 'refuse' }, false);
      const stack = new KrogerTokenBrokerStack(app, 'PlaintextProps', { broker: { plaintextFields: 'accept' } });
      expect(environmentOf(Template.fromStack(stack), 'Broker/Callback').FIELD_PLAINTEXT).toBeUndefined();
    });

    it('rejects another value with a message naming the key', () => {
      const app = newApp({ clientId: 'x', plaintextFields: 'off' }, false);
      expect(() => new KrogerTokenBrokerStack(app, 'BadPlaintextContext')).toThrow(
        /context "plaintextFields" must be one of accept, refuse, got "off"/,
      );
    });
  });
});
