/**
 * The broker's alarms (errors and throttles of each function, the API's 5xx, the refresher's lost
 * runs, persistent failures and backlog, refused client credentials, held mass refusals), the metrics
 * they watch, and where they notify. Created in the broker's scope under the IDs
 * `<Function>ErrorsAlarm`, `<Function>ThrottlesAlarm`, `Api5xxAlarm`,
 * `Refresher{Errors,Failures,Backlog}Alarm`, `ClientRejectedAlarm` and `MassRefusalAlarm`; with
 * `alarmEmail`, also `AlarmTopicKey` and `AlarmTopic`.
 *
 * Notifications are attached in one place, {@link notifyOnEveryAlarm}: an aspect that gives every
 * alarm in the broker's scope the same alarm and OK actions at synth, so an alarm added later (here
 * or anywhere else in the broker) cannot be created without them.
 */
import { Aspects, Duration, type IAspect, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct, IConstruct } from 'constructs';
import {
  type FaultMetricName,
  METRICS_DIMENSION,
  METRICS_NAMESPACE,
  type RefresherMetricName,
} from '../../functions/core/schema';
import type { BrokerFunctions } from './functions';

/** See `KrogerTokenBroker.metricRefresher`. */
export function refresherMetric(
  refresher: lambda.IFunction,
  metricName: RefresherMetricName,
  options: cloudwatch.MetricOptions,
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    // The refresher's metric line carries its function name as the one dimension (the logger's
    // `function` field), so two broker stacks in one account and region never share an alarm.
    dimensionsMap: { [METRICS_DIMENSION]: refresher.functionName },
    statistic: 'Sum',
    period: Duration.minutes(5),
    ...options,
  });
}

/**
 * A fault metric (`functions/core/schema.ts` FAULT_METRICS) of one of the functions that refresh:
 * published the moment it happens, one count per line.
 */
export function faultMetric(
  fn: lambda.IFunction,
  metricName: FaultMetricName,
  options: cloudwatch.MetricOptions = {},
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { [METRICS_DIMENSION]: fn.functionName },
    statistic: 'Sum',
    period: Duration.minutes(5),
    ...options,
  });
}

/**
 * The topic alarms notify: the given one, or a new one with an e-mail subscription, or none.
 * The new topic is encrypted under a key of its own (the AWS managed SNS key cannot be used by
 * CloudWatch), accepts only TLS, and lets CloudWatch alarms of this account publish to it.
 * @param scope the broker: the IDs are relative to it
 */
export function alarmTopicFor(
  scope: Construct,
  topic: sns.ITopic | undefined,
  email: string | undefined,
): sns.ITopic | undefined {
  if (topic || !email) return topic;
  const { account, partition, region } = Stack.of(scope);
  const key = new kms.Key(scope, 'AlarmTopicKey', {
    description: 'Encrypts the Kroger token broker alarm topic',
    enableKeyRotation: true,
    // Notifications are transient: nothing stays encrypted under this key once they are delivered,
    // so it goes with the stack whatever the removal policy of the data is.
    removalPolicy: RemovalPolicy.DESTROY,
    pendingWindow: Duration.days(7),
  });
  // CloudWatch encrypts each notification it publishes to the topic with this key.
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'AllowCloudWatchAlarmsToPublish',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
    }),
  );
  const created = new sns.Topic(scope, 'AlarmTopic', {
    displayName: 'Kroger token broker alarms',
    masterKey: key,
    enforceSSL: true,
  });
  // A topic policy replaces SNS's default one: say explicitly that this account's alarms may publish.
  created.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'AllowCloudWatchAlarmsOfThisAccount',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [created.topicArn],
      conditions: {
        ArnLike: { 'aws:SourceArn': `arn:${partition}:cloudwatch:${region}:${account}:alarm:*` },
        StringEquals: { 'aws:SourceAccount': account },
      },
    }),
  );
  created.addSubscription(new subscriptions.EmailSubscription(email));
  return created;
}

/**
 * Gives every CloudWatch alarm in `scope` (the broker), whoever creates it and whenever, `targets`
 * as its alarm actions and its OK actions: a page when something breaks, and word when it recovers.
 * Runs as an aspect at synth, so alarms created after the broker's constructor are covered too.
 */
export function notifyOnEveryAlarm(scope: Construct, targets: readonly cloudwatch.IAlarmAction[]): void {
  if (targets.length === 0) return;
  Aspects.of(scope).add(new AlarmActions(targets));
}

/** The aspect behind {@link notifyOnEveryAlarm}. */
class AlarmActions implements IAspect {
  constructor(private readonly targets: readonly cloudwatch.IAlarmAction[]) {}

  public visit(node: IConstruct): void {
    // AlarmBase covers metric and composite alarms alike.
    if (node instanceof cloudwatch.AlarmBase) {
      node.addAlarmAction(...this.targets);
      node.addOkAction(...this.targets);
    }
  }
}

/** The actions every alarm runs: `alarmAction`, and the alarm topic. */
export function alarmTargets(
  action: cloudwatch.IAlarmAction | undefined,
  topic: sns.ITopic | undefined,
): cloudwatch.IAlarmAction[] {
  return [...(action ? [action] : []), ...(topic ? [new actions.SnsAction(topic)] : [])];
}

/**
 * Alarm and OK actions come from {@link notifyOnEveryAlarm}, not from here.
 * @param scope the broker: the IDs are relative to it
 * @param runPeriod the schedule period (a rate schedule's, else 5 minutes): one refresher run per
 * datapoint of the refresher's metric alarms
 */
export function createAlarms(
  scope: Construct,
  functions: BrokerFunctions,
  stage: apigwv2.HttpStage,
  runPeriod: Duration,
): cloudwatch.Alarm[] {
  const period = Duration.minutes(5);
  const alarm = (
    id: string,
    metric: cloudwatch.IMetric,
    description: string,
    options: Partial<cloudwatch.AlarmProps> = {},
  ): cloudwatch.Alarm => {
    return new cloudwatch.Alarm(scope, id, {
      metric,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      // No traffic is not a failure.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
      ...options,
    });
  };
  const alarms: cloudwatch.Alarm[] = [];
  const requestFunctions: Array<[string, lambda.Function]> = [
    ['Login', functions.login],
    ['Callback', functions.callback],
    ['Refresh', functions.refresh],
    ['Complete', functions.complete],
  ];
  for (const [name, fn] of requestFunctions) {
    alarms.push(
      alarm(
        `${name}ErrorsAlarm`,
        fn.metricErrors({ period, statistic: 'Sum' }),
        `${name} function errors (unhandled failures, timeouts)`,
      ),
      alarm(`${name}ThrottlesAlarm`, fn.metricThrottles({ period, statistic: 'Sum' }), `${name} function throttled`),
    );
  }
  alarms.push(
    alarm('Api5xxAlarm', stage.metricServerError({ period, statistic: 'Sum' }), 'HTTP API returned 5xx responses'),
  );

  // The refresher. An error is a whole run lost (bad config, a missing permission, the index query
  // failing, a timeout), not one user: alarm on the first. No throttle alarm: with reserved
  // concurrency a throttle is a tick that came while the previous run was still going (by design;
  // the backlog alarm below reports a refresher that cannot keep up); without, it is the account
  // out of concurrency, which the other functions' throttle alarms report.
  alarms.push(
    alarm(
      'RefresherErrorsAlarm',
      functions.refresher.metricErrors({ period, statistic: 'Sum' }),
      'Refresher run failed as a whole (unhandled error or timeout): no user was refreshed by that run',
    ),
  );
  // Per-user counts from the run's metric line. One failed refresh is routine (a provider blip,
  // a user whose lease another process holds) and is retried with back-off, and readers refresh
  // on demand anyway; failures in three runs in a row mean the provider, the network or the client
  // credentials are broken for everyone. Missing data (no run finished) neither fires nor clears
  // these: that is the errors alarm's business.
  const everyRun = {
    evaluationPeriods: 3,
    datapointsToAlarm: 3,
    treatMissingData: cloudwatch.TreatMissingData.MISSING,
  };
  alarms.push(
    alarm(
      'RefresherFailuresAlarm',
      refresherMetric(functions.refresher, 'failed', { period: runPeriod }),
      'Refresher: token refreshes failed in 3 consecutive runs (provider down, network, or client credentials wrong); see token.refresh_failed events and the refresher log',
      everyRun,
    ),
    // Users left for the next run because the run reached its deadline, three runs in a row: the
    // refresher is not keeping up (raise refreshConcurrency, or look at provider latency).
    alarm(
      'RefresherBacklogAlarm',
      refresherMetric(functions.refresher, 'deferred', { period: runPeriod }),
      'Refresher: due users deferred to the next run in 3 consecutive runs (not keeping up)',
      everyRun,
    ),
  );
  // Faults that need an operator at once, from both functions that refresh (the refresh function
  // and the scheduled refresher): one datapoint is enough.
  const fromRefreshers = (metricName: FaultMetricName): cloudwatch.MathExpression =>
    new cloudwatch.MathExpression({
      expression: 'FILL(refresh, 0) + FILL(refresher, 0)',
      usingMetrics: {
        refresh: faultMetric(functions.refresh, metricName, { period }),
        refresher: faultMetric(functions.refresher, metricName, { period }),
      },
      label: metricName,
      period,
    });
  alarms.push(
    alarm(
      'ClientRejectedAlarm',
      fromRefreshers('clientRejected'),
      "Kroger refused the broker's client credentials (invalid_client / 401): every refresh fails, grants are kept. Fix the client secret in Secrets Manager or the client id; refreshes recover by themselves (docs/operations.md)",
    ),
    alarm(
      'MassRefusalAlarm',
      fromRefreshers('refusalsHeld'),
      'Kroger refused more grants in a short window than MASS_REFUSAL_THRESHOLD allows: those users are kept active instead of being marked reauth_required. Find out whether the refusals are real (docs/operations.md)',
    ),
  );
  // No alarm on `reauth`: a user revoking access is normal, one token.reauth_required event per
  // user tells the app to ask for a new login, and no fixed threshold fits every user base. Build
  // one from metricRefresher('reauth') if a burst should page someone.
  return alarms;
}
