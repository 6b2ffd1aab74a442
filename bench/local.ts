/**
 * The local stack as the bench runs it: the same `startLocalStack` as `npm start` (handlers behind
 * the HTTP adapter, the sandbox provider), on a DynamoDB Local the bench started, with fresh tables,
 * the deployed log level (INFO), no scheduled refresher, and the handlers' DynamoDB client counted.
 */
import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createDynamoClient } from '../functions/adapters/dynamo';
import { dynamoClient } from '../functions/services';
import { readStoreConfig } from '../functions/core/config';
import { type LocalStack, startLocalStack } from '../infra/local/stack';
import { DynamoCounter, LogTap } from './instrument';
import { benchStackEnv } from './processes';

/** A started bench stack and what counts it. */
export interface BenchStack {
  readonly stack: LocalStack;
  /** Counts the handlers' client (`handler`) and the bench's own (`direct`). */
  readonly counter: DynamoCounter;
  /** Catches the handlers' log lines (stdout) while the stack runs. */
  readonly logs: LogTap;
  /** The bench's own DynamoDB client on the same endpoint. */
  readonly dynamo: DynamoDBClient;
  /** The handlers' shared DynamoDB client (functions/runtime.ts), as Lambda would reuse it. */
  readonly handlerDynamo: DynamoDBClient;
  stop(): Promise<void>;
}

/** Starts the stack on `dynamoEndpoint`. Call once per process: the handlers read their config at import. */
export async function startBenchStack(dynamoEndpoint: string): Promise<BenchStack> {
  const suffix = randomBytes(4).toString('hex');
  const logs = new LogTap();
  logs.install();
  let stack: LocalStack | undefined;
  try {
    stack = await startLocalStack(benchStackEnv(dynamoEndpoint, suffix));
    // The client the stack's handlers use (built by the stack's composition root).
    const handlerDynamo = dynamoClient(stack.services);
    const counter = new DynamoCounter();
    const dynamo = createDynamoClient(readStoreConfig(stack.env));
    counter.attach(handlerDynamo, 'handler');
    counter.attach(dynamo, 'direct');
    const started = stack;
    return {
      stack: started,
      counter,
      logs,
      dynamo,
      handlerDynamo,
      async stop() {
        dynamo.destroy();
        await started.stop();
        logs.uninstall();
      },
    };
  } catch (error) {
    await stack?.stop();
    logs.uninstall();
    throw error;
  }
}
