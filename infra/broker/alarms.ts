/**
 * The broker's alarms (errors and throttles of each function, the API's 5xx, the refresher's lost
 * runs, persistent failures and backlog) and the refresher's per-run metrics they watch. Created in
 * the broker's scope under the IDs `<Function>ErrorsAlarm`, `<Function>ThrottlesAlarm`,
 * `Api5xxAlarm` and `Refresher{Errors,Failures,Backlog}Alarm`.
 */
import { Duration } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { METRICS_DIMENSION, METRICS_NAMESPACE, type RefresherMetricName } from '../../functions/core/schema';
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
 * @param scope the broker: the IDs are relative to it
 * @param action notified by every alarm, if given
 * @param runPeriod the schedule period (a rate schedule's, else 5 minutes): one refresher run per
 * datapoint of the refresher's metric alarms
 */
export function createAlarms(
  scope: Construct,
  functions: BrokerFunctions,
  stage: apigwv2.HttpStage,
  action: cloudwatch.IAlarmAction | undefined,
  runPeriod: Duration,
): cloudwatch.Alarm[] {
  const period = Duration.minutes(5);
  const alarm = (
    id: string,
    metric: cloudwatch.IMetric,
    description: string,
    options: Partial<cloudwatch.AlarmProps> = {},
  ): cloudwatch.Alarm => {
    const created = new cloudwatch.Alarm(scope, id, {
      metric,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      // No traffic is not a failure.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
      ...options,
    });
    if (action) created.addAlarmAction(action);
    return created;
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
  // No alarm on `reauth`: a user revoking access is normal, one token.reauth_required event per
  // user tells the app to ask for a new login, and no fixed threshold fits every user base. Build
  // one from metricRefresher('reauth') if a burst should page someone.
  return alarms;
}
