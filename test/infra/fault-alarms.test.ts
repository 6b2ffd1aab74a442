/**
 * The alarms on faults that need an operator at once: the provider refused the broker's client
 * credentials, or the mass-refusal guard held refusals back. Each watches the metric the refresh
 * function and the scheduled refresher publish (functions/flows/single-flight-refresh.ts), summed.
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { FAULT_METRICS, METRICS_DIMENSION, METRICS_NAMESPACE } from '../../functions/core/schema';
import { KrogerTokenBroker } from '../../infra/broker';
import { logicalIdOf, newApp, propertiesOf } from './support';

let template: Template;
let broker: KrogerTokenBroker;

beforeAll(() => {
  const stack = new Stack(newApp({}, false), 'FaultAlarms', { env: { account: '123456789012', region: 'eu-west-1' } });
  broker = new KrogerTokenBroker(stack, 'Broker', { clientId: 'fault-alarms-client' });
  template = Template.fromStack(stack);
});

describe('Construct: KrogerTokenBroker', () => {
  describe('fault alarms', () => {
    it.each([
      ['ClientRejected', 'clientRejected', /client credentials/],
      ['MassRefusal', 'refusalsHeld', /MASS_REFUSAL_THRESHOLD/],
    ])('%sAlarm fires on the first "%s" of the refresh function or the refresher', (id, metricName, description) => {
      const alarm = propertiesOf(template, `Broker/${id}Alarm/Resource`);
      expect(alarm).toMatchObject({
        Threshold: 1,
        EvaluationPeriods: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmDescription: expect.stringMatching(description),
      });
      const metrics = alarm.Metrics as Array<{
        Id: string;
        Expression?: string;
        MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions: unknown[] }; Stat: string };
      }>;
      expect(metrics.find((m) => m.Expression)?.Expression).toBe('FILL(refresh, 0) + FILL(refresher, 0)');
      const byId = Object.fromEntries(metrics.filter((m) => m.MetricStat).map((m) => [m.Id, m.MetricStat!]));
      for (const [metricId, fn] of [
        ['refresh', 'Refresh'],
        ['refresher', 'Refresher'],
      ]) {
        expect(byId[metricId]).toEqual({
          Metric: {
            Namespace: METRICS_NAMESPACE,
            MetricName: metricName,
            // The one dimension the flow's metric line carries: the function name.
            Dimensions: [{ Name: METRICS_DIMENSION, Value: { Ref: logicalIdOf(template, `Broker/${fn}/Resource`) } }],
          },
          Period: 300,
          Stat: 'Sum',
        });
      }
      expect(FAULT_METRICS).toContain(metricName);
    });

    it('lists both on the construct', () => {
      const ids = broker.alarms.map((a) => Stack.of(broker).resolve(a.alarmArn)['Fn::GetAtt'][0]);
      expect(ids).toEqual(
        expect.arrayContaining([
          logicalIdOf(template, 'Broker/ClientRejectedAlarm/Resource'),
          logicalIdOf(template, 'Broker/MassRefusalAlarm/Resource'),
        ]),
      );
    });
  });
});
