/**
 * The scheduled refresher with non-default settings (a bus of its own, another schedule, window,
 * concurrency, a reservation and a quieter log level), and the contracts between infra and the handler code that no synth would catch: the
 * index name and the metric line the alarms watch. No bundling: nothing here looks at code assets.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import { createLogger } from '../../functions/adapters/logger';
import { tableDefinition } from '../../functions/adapters/tables';
import { METRICS_NAMESPACE, SESSIONS_TABLE, TOKENS_TABLE } from '../../functions/core/schema';
import { runRefreshSweep } from '../../functions/flows/refresh-sweep';
import { KrogerTokenBroker, KrogerTokenBrokerProps } from '../../infra/broker';
import { environmentOf, newApp, policyLinesForRole, propertiesOf, roleOfFunction } from './support';

function synth(props: Partial<KrogerTokenBrokerProps>, withBus = false): { template: Template; stack: Stack } {
  const stack = new Stack(newApp({}, false), 'RefresherTest', {
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  const eventBus = withBus ? new events.EventBus(stack, 'AppBus', { eventBusName: 'app-events' }) : undefined;
  new KrogerTokenBroker(stack, 'Broker', { clientId: 'client', eventBus, ...props });
  return { template: Template.fromStack(stack), stack };
}

describe('Construct: KrogerTokenBroker', () => {
  describe('Feature: scheduled refresher settings', () => {
    let template: Template;

    beforeAll(() => {
      ({ template } = synth(
        {
          refreshSchedule: events.Schedule.rate(Duration.minutes(2)),
          refreshWindow: Duration.minutes(15),
          refreshConcurrency: 16,
          refresherReservedConcurrency: 1,
          logLevel: 'WARN',
        },
        true,
      ));
    });

    it('reserves the given concurrency for the refresher only, when asked', () => {
      expect(propertiesOf(template, 'Broker/Refresher/Resource').ReservedConcurrentExecutions).toBe(1);
      for (const name of ['Login', 'Callback', 'Refresh']) {
        expect(propertiesOf(template, `Broker/${name}/Resource`).ReservedConcurrentExecutions).toBeUndefined();
      }
    });

    it("passes a WARN log level as LOG_LEVEL only, never as Lambda's filter (the metric line is INFO)", () => {
      for (const name of ['Login', 'Callback', 'Refresh', 'Refresher']) {
        expect(environmentOf(template, `Broker/${name}`).LOG_LEVEL).toBe('WARN');
        expect(propertiesOf(template, `Broker/${name}/Resource`).LoggingConfig.ApplicationLogLevel).toBe('TRACE');
      }
    });

    it('passes the window in seconds and the concurrency to the refresher', () => {
      expect(environmentOf(template, 'Broker/Refresher')).toMatchObject({
        REFRESH_WINDOW_SECONDS: '900',
        REFRESH_CONCURRENCY: '16',
      });
    });

    it('schedules the rule at the configured rate', () => {
      expect(propertiesOf(template, 'Broker/RefreshSchedule/Resource').ScheduleExpression).toBe('rate(2 minutes)');
    });

    it('sums the refresher metrics over one schedule period, so each datapoint is one run', () => {
      for (const name of ['RefresherFailuresAlarm', 'RefresherBacklogAlarm']) {
        expect(propertiesOf(template, `Broker/${name}/Resource`).Period).toBe(120);
      }
      // Only this stack's refresher: its metric line carries the function name as a dimension.
      for (const name of ['RefresherFailuresAlarm', 'RefresherBacklogAlarm']) {
        expect(propertiesOf(template, `Broker/${name}/Resource`).Dimensions).toEqual([
          { Name: 'function', Value: { Ref: expect.stringMatching(/^BrokerRefresher[0-9A-F]{8}$/) } },
        ]);
      }
      // Lambda errors keep the 5-minute period of the other function alarms.
      expect(propertiesOf(template, 'Broker/RefresherErrorsAlarm/Resource').Period).toBe(300);
    });

    it('drops a scheduled run that could not start within one period', () => {
      template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        MaximumRetryAttempts: 0,
        MaximumEventAgeInSeconds: 120,
      });
    });

    it('grants PutEvents on the given bus only, names it by ARN, and never uses the default bus', () => {
      const busArn = 'AppBus.Arn';
      for (const name of ['Callback', 'Refresh', 'Refresher']) {
        const events = policyLinesForRole(template, roleOfFunction(template, `Broker/${name}`)).filter((line) =>
          line.startsWith('events:'),
        );
        expect(events).toEqual([`events:PutEvents -> ${busArn}`]);
        expect(environmentOf(template, `Broker/${name}`).EVENT_BUS_NAME).toBe(busArn);
      }
      expect(JSON.stringify(template.toJSON())).not.toContain('event-bus/default');
    });

    it('puts no resource policy on the bus (the grant is on the roles)', () => {
      template.resourceCountIs('AWS::Events::EventBusPolicy', 0);
      template.hasResourceProperties('AWS::Events::EventBus', { Name: 'app-events', Policy: Match.absent() });
    });
  });

  describe('Feature: schedule and window consistency', () => {
    // In-memory synth prints warnings through console.error; the tests read them from Annotations.
    let printed: jest.SpyInstance;
    beforeEach(() => {
      printed = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    });
    afterEach(() => printed.mockRestore());

    it('warns when the window is shorter than the schedule period', () => {
      const { stack } = synth({
        refreshSchedule: events.Schedule.rate(Duration.minutes(30)),
        refreshWindow: Duration.minutes(10),
      });
      Annotations.fromStack(stack).hasWarning(
        '/RefresherTest/Broker',
        Match.stringLikeRegexp(
          'refreshWindow \\(10 minutes\\) is shorter than the refresh schedule period \\(30 minutes\\)',
        ),
      );
    });

    it('does not warn with the defaults', () => {
      const { stack } = synth({});
      Annotations.fromStack(stack).hasNoWarning('*', Match.stringLikeRegexp('refreshWindow'));
    });

    it('keeps alarm periods to whole minutes of at most an hour for a cron schedule or a long rate', () => {
      const cron = synth({ refreshSchedule: events.Schedule.cron({ minute: '*/10' }) }).template;
      expect(propertiesOf(cron, 'Broker/RefresherFailuresAlarm/Resource').Period).toBe(300);
      const daily = synth({
        refreshSchedule: events.Schedule.rate(Duration.days(1)),
        refreshWindow: Duration.days(1),
      }).template;
      expect(propertiesOf(daily, 'Broker/RefresherFailuresAlarm/Resource').Period).toBe(3600);
    });
  });

  describe('Feature: contracts with the handler code', () => {
    it('declares the same keys, index and TTL attribute as the tables DynamoDB Local gets', () => {
      const { template } = synth({});
      for (const [path, schema] of [
        ['Broker/TokensTable/Resource', TOKENS_TABLE],
        ['Broker/SessionsTable/Resource', SESSIONS_TABLE],
      ] as const) {
        const local = tableDefinition('local', schema);
        const declared = propertiesOf(template, path);
        expect(declared.KeySchema).toEqual(local.KeySchema);
        expect(new Set(declared.AttributeDefinitions)).toEqual(new Set(local.AttributeDefinitions));
        expect(declared.GlobalSecondaryIndexes ?? []).toEqual(local.GlobalSecondaryIndexes ?? []);
        expect(declared.TimeToLiveSpecification).toEqual({ AttributeName: schema.ttlAttribute, Enabled: true });
      }
    });

    it('alarms on metrics the refresher actually emits: namespace, names, the function dimension', async () => {
      const lines: string[] = [];
      await runRefreshSweep(
        {
          tokens: { queryDue: async () => ({ userIds: [], readUnits: 0 }) } as never,
          refresher: { refreshIfDue: async () => 'refreshed' } as never,
          logger: createLogger({ write: (line) => lines.push(line) }),
        },
        { windowSeconds: 600 },
      );
      const emf = lines.map((line) => JSON.parse(line)).find((entry) => entry._aws);
      expect(emf.message).toBe('scheduled refresh finished');
      const [directive] = emf._aws.CloudWatchMetrics;
      expect(directive.Namespace).toBe(METRICS_NAMESPACE);
      // The alarms use the `function` dimension; a change to the metric line must be made there too.
      expect(directive.Dimensions).toEqual([['function']]);
      expect(directive.Metrics).toEqual(expect.arrayContaining([{ Name: 'failed', Unit: 'Count' }]));
      const names = directive.Metrics.map((m: { Name: string }) => m.Name);
      expect(names).toEqual(expect.arrayContaining(['failed', 'deferred', 'reauth', 'due', 'refreshed']));
      for (const name of ['failed', 'deferred']) expect(emf[name]).toBe(0);
    });

    it('writes the metric line at INFO even under LOG_LEVEL=WARN, so Lambda must not filter by level', async () => {
      const lines: string[] = [];
      await runRefreshSweep(
        {
          tokens: { queryDue: async () => ({ userIds: [], readUnits: 0 }) } as never,
          refresher: { refreshIfDue: async () => 'refreshed' } as never,
          logger: createLogger({ level: 'warn', write: (line) => lines.push(line) }),
        },
        { windowSeconds: 600 },
      );
      const emf = lines.map((line) => JSON.parse(line)).find((entry) => entry._aws);
      // An application log level of WARN at Lambda would drop exactly this line.
      expect(emf?.level).toBe('INFO');
    });
  });
});
