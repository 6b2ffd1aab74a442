/**
 * Alarms notify someone (issue 14): `alarmTopicArn` (an existing topic) and `alarmEmail` (a new topic
 * with an e-mail subscription), as context keys and as construct props; every alarm of the broker,
 * including one added after the broker was built, gets the topic as an alarm action and as an OK
 * action. No bundling: nothing here looks at code assets.
 */
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import { KrogerTokenBroker } from '../../infra/broker';
import { KrogerTokenBrokerStack } from '../../infra/stack';
import { logicalIdOf, newApp, propertiesOf } from './support';

const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:oncall';
const ENV = { account: '123456789012', region: 'eu-west-1' };

type Resource = { Type: string; Properties: any };

/** Every alarm of the template (metric and composite), by logical ID. */
function alarmsOf(template: Template): Array<[string, Resource]> {
  return Object.entries(template.toJSON().Resources as Record<string, Resource>).filter(([, r]) =>
    ['AWS::CloudWatch::Alarm', 'AWS::CloudWatch::CompositeAlarm'].includes(r.Type),
  );
}

/** Asserts every alarm has exactly `expected` as alarm actions and as OK actions. */
function expectEveryAlarmNotifies(template: Template, expected: unknown[]): void {
  const alarms = alarmsOf(template);
  // Errors and throttles of 3 functions, API 5xx, the refresher's errors, failures and backlog.
  expect(alarms.length).toBeGreaterThanOrEqual(10);
  for (const [logicalId, alarm] of alarms) {
    expect({ logicalId, alarm: alarm.Properties.AlarmActions, ok: alarm.Properties.OKActions }).toEqual({
      logicalId,
      alarm: expected,
      ok: expected,
    });
  }
}

describe('Construct: KrogerTokenBroker', () => {
  describe('Feature: alarm notifications', () => {
    it('notifies the topic of the alarmTopicArn context key from every alarm, on alarm and on OK', () => {
      const stack = new KrogerTokenBrokerStack(newApp({ clientId: 'x', alarmTopicArn: TOPIC_ARN }, false), 'Topic', {
        env: ENV,
      });
      const template = Template.fromStack(stack);
      expectEveryAlarmNotifies(template, [TOPIC_ARN]);
      expect(template.toJSON().Outputs.AlarmTopicArn.Value).toBe(TOPIC_ARN);
      // An existing topic is used as it is: nothing created for it.
      template.resourceCountIs('AWS::SNS::Topic', 0);
    });

    it('creates a topic with an e-mail subscription for the alarmEmail context key and notifies it from every alarm', () => {
      const stack = new KrogerTokenBrokerStack(
        newApp({ clientId: 'x', alarmEmail: 'oncall@example.com' }, false),
        'Email',
        { env: ENV },
      );
      const template = Template.fromStack(stack);
      const topicId = logicalIdOf(template, 'Broker/AlarmTopic/Resource');
      expectEveryAlarmNotifies(template, [{ Ref: topicId }]);
      template.hasResourceProperties('AWS::SNS::Subscription', {
        Protocol: 'email',
        Endpoint: 'oncall@example.com',
        TopicArn: { Ref: topicId },
      });
      expect(template.toJSON().Outputs.AlarmTopicArn.Value).toEqual({ Ref: topicId });
    });

    it('encrypts the created topic under its own key, which CloudWatch may use, and lets only TLS and this account\u2019s alarms publish', () => {
      const template = Template.fromStack(
        new KrogerTokenBrokerStack(newApp({ clientId: 'x', alarmEmail: 'oncall@example.com' }, false), 'Policies', {
          env: ENV,
        }),
      );
      const keyId = logicalIdOf(template, 'Broker/AlarmTopicKey/Resource');
      expect(propertiesOf(template, 'Broker/AlarmTopic/Resource').KmsMasterKeyId).toEqual({
        'Fn::GetAtt': [keyId, 'Arn'],
      });
      const key = propertiesOf(template, 'Broker/AlarmTopicKey/Resource');
      expect(key.EnableKeyRotation).toBe(true);
      expect(key.KeyPolicy.Statement).toContainEqual(
        expect.objectContaining({
          Effect: 'Allow',
          Principal: { Service: 'cloudwatch.amazonaws.com' },
          Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        }),
      );
      const policy = propertiesOf(template, 'Broker/AlarmTopic/Policy/Resource').PolicyDocument.Statement;
      expect(policy).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Action: 'sns:Publish',
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      );
      expect(policy).toContainEqual(
        expect.objectContaining({
          Effect: 'Allow',
          Principal: { Service: 'cloudwatch.amazonaws.com' },
          Action: 'sns:Publish',
          Condition: {
            ArnLike: { 'aws:SourceArn': 'arn:aws:cloudwatch:eu-west-1:123456789012:alarm:*' },
            StringEquals: { 'aws:SourceAccount': '123456789012' },
          },
        }),
      );
    });

    it('passes the AwsSolutions checks with the created topic and its key', () => {
      const app = newApp({ clientId: 'x', alarmEmail: 'oncall@example.com' }, false);
      const stack = new KrogerTokenBrokerStack(app, 'EmailNag', { env: ENV });
      Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
      // Throws on any unacknowledged finding, as `cdk synth` does.
      expect(() => app.synth()).not.toThrow();
      expect(app.synth().getStackByName(stack.stackName).template.Resources).toHaveProperty(
        logicalIdOf(Template.fromStack(stack), 'Broker/AlarmTopic/Resource'),
      );
    });

    it('keeps the alarmAction prop working, now on OK too, next to an alarmTopic prop', () => {
      const stack = new Stack(newApp({}, false), 'Props', { env: ENV });
      const own = new sns.Topic(stack, 'Own');
      new KrogerTokenBroker(stack, 'Broker', {
        clientId: 'x',
        alarmAction: new actions.SnsAction(own),
        alarmTopic: sns.Topic.fromTopicArn(stack, 'Existing', TOPIC_ARN),
      });
      const template = Template.fromStack(stack);
      expectEveryAlarmNotifies(template, [{ Ref: logicalIdOf(template, 'Own/Resource') }, TOPIC_ARN]);
    });

    it('gives an alarm added to the broker later (by any part of it) the same actions, without it asking', () => {
      const stack = new Stack(newApp({}, false), 'Later', { env: ENV });
      const broker = new KrogerTokenBroker(stack, 'Broker', {
        clientId: 'x',
        alarmTopic: sns.Topic.fromTopicArn(stack, 'T', TOPIC_ARN),
      });
      new cloudwatch.Alarm(broker, 'AddedLaterAlarm', {
        metric: broker.metricRefresher('reauth'),
        threshold: 10,
        evaluationPeriods: 1,
      });
      new cloudwatch.CompositeAlarm(broker, 'AddedComposite', {
        alarmRule: cloudwatch.AlarmRule.anyOf(...broker.alarms),
      });
      const template = Template.fromStack(stack);
      expectEveryAlarmNotifies(template, [TOPIC_ARN]);
      expect(propertiesOf(template, 'Broker/AddedLaterAlarm/Resource').OKActions).toEqual([TOPIC_ARN]);
      expect(propertiesOf(template, 'Broker/AddedComposite/Resource').AlarmActions).toEqual([TOPIC_ARN]);
    });

    it('leaves an alarm of the app outside the broker alone (metricRefresher for your own alarms)', () => {
      const stack = new Stack(newApp({}, false), 'Outside', { env: ENV });
      const broker = new KrogerTokenBroker(stack, 'Broker', {
        clientId: 'x',
        alarmTopic: sns.Topic.fromTopicArn(stack, 'T', TOPIC_ARN),
      });
      new cloudwatch.Alarm(stack, 'AppAlarm', {
        metric: broker.metricRefresher('reauth'),
        threshold: 10,
        evaluationPeriods: 1,
      });
      expect(propertiesOf(Template.fromStack(stack), 'AppAlarm/Resource').AlarmActions).toBeUndefined();
    });

    it('creates no topic and no output when nothing is configured', () => {
      const template = Template.fromStack(new KrogerTokenBrokerStack(newApp({ clientId: 'x' }, false), 'Quiet'));
      template.resourceCountIs('AWS::SNS::Topic', 0);
      expect(template.toJSON().Outputs.AlarmTopicArn).toBeUndefined();
      for (const [, alarm] of alarmsOf(template)) expect(alarm.Properties.AlarmActions).toBeUndefined();
    });

    it.each([
      [
        { alarmTopicArn: 'arn:aws:sqs:eu-west-1:123456789012:queue' },
        /"alarmTopicArn" must be the ARN of an SNS topic/,
      ],
      [{ alarmTopicArn: 'oncall' }, /"alarmTopicArn" must be the ARN of an SNS topic .*got "oncall"/],
      [{ alarmEmail: 'oncall' }, /invalid "alarmEmail": must be one e-mail address, got "oncall"/],
      [{ alarmEmail: 'a@example.com b@example.com' }, /invalid "alarmEmail": must be one e-mail address/],
      [
        { alarmEmail: 'oncall@example.com', alarmTopicArn: TOPIC_ARN },
        /invalid "alarmEmail": give either alarmTopic or alarmEmail/,
      ],
    ])('rejects context %j with a message naming the key', (context, message) => {
      const app: App = newApp({ clientId: 'x', ...context }, false);
      expect(() => new KrogerTokenBrokerStack(app, 'BadAlarmContext', { env: ENV })).toThrow(message);
    });
  });
});
