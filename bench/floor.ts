/**
 * The cold-start floor: what any handler that talks to DynamoDB and Secrets Manager pays before its
 * own code runs. Only the two SDK clients, each created once at module scope as the real handlers
 * do; `bench/cold-start.ts` bundles it with the construct's esbuild options and times its import.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

const dynamo = new DynamoDBClient({});
const secrets = new SecretsManagerClient({});

/** A trivial handler that keeps both clients alive (so the bundler cannot drop them). */
export const handler = async (): Promise<{ ok: boolean }> => ({ ok: Boolean(dynamo && secrets) });
