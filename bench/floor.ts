/**
 * The cold-start floor: what a broker handler pays for the AWS SDK clients it needs before its own
 * code runs: DynamoDB (the tables), Secrets Manager (the client secret) and KMS (the field key that
 * seals refresh tokens and verifiers at rest). Only the three clients, each created once at module
 * scope as the real handlers do; `bench/cold-start.ts` bundles it with the construct's esbuild
 * options and times its import. The KMS client joined the floor with encryption at rest (issue 12):
 * `npm run bench`'s `kms` section reports what the encryption code itself adds.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

const dynamo = new DynamoDBClient({});
const secrets = new SecretsManagerClient({});
const kms = new KMSClient({});

/** A trivial handler that keeps the clients alive (so the bundler cannot drop them). */
export const handler = async (): Promise<{ ok: boolean }> => ({ ok: Boolean(dynamo && secrets && kms) });
