/**
 * The broker's state: the tokens and sessions tables (from their schema in
 * functions/core/schema.ts, which DynamoDB Local's tables come from too), the customer-managed key
 * encrypting both, the field key encrypting refresh tokens and code verifiers inside the items, and
 * the client secret. Created in the broker's scope under the IDs `TableKey`, `TokensTable`,
 * `SessionsTable`, `FieldKey` and `ClientSecret`: those IDs are the resources' logical IDs, and
 * changing one would replace a retained table or key.
 */
import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { type KeyAttribute, SESSIONS_TABLE, type TableSchema, TOKENS_TABLE } from '../../functions/core/schema';

/** The tables, their key, the field key and the client secret. */
export interface BrokerStorage {
  readonly tableKey: kms.Key;
  /**
   * Encrypts refresh tokens and code verifiers field by field (envelope encryption, KMS data keys).
   * Its key policy lets only the broker's own functions use it (grants.ts `grantFieldKey`).
   */
  readonly fieldKey: kms.Key;
  readonly tokensTable: dynamodb.Table;
  readonly sessionsTable: dynamodb.Table;
  readonly clientSecret: secretsmanager.ISecret;
}

/**
 * Creates the key, both tables and, unless one is given, the client secret.
 * @param scope the broker: the IDs are relative to it
 * @param clientSecret an existing secret; none creates one, named by CloudFormation
 */
export function createStorage(
  scope: Construct,
  removalPolicy: RemovalPolicy,
  clientSecret: secretsmanager.ISecret | undefined,
): BrokerStorage {
  const tableKey = new kms.Key(scope, 'TableKey', {
    description: 'Encrypts the Kroger token broker tables (tokens, login sessions)',
    enableKeyRotation: true,
    // Retaining a table while deleting its key would leave the table unreadable.
    removalPolicy,
  });
  return {
    tableKey,
    fieldKey: createFieldKey(scope, removalPolicy),
    tokensTable: createTable(scope, 'TokensTable', TOKENS_TABLE, tableKey, removalPolicy),
    sessionsTable: createTable(scope, 'SessionsTable', SESSIONS_TABLE, tableKey, removalPolicy),
    clientSecret: clientSecret ?? createClientSecret(scope, removalPolicy),
  };
}

/**
 * What the account may do with the field key without being named in its policy: administer it
 * (describe, rotate, tag, change the policy, schedule deletion), never use it. The table key trusts
 * the account's IAM policies for everything (CDK's default key policy), so any principal with a broad
 * `kms:Decrypt` IAM policy could use it; this key names its users itself (grants.ts), so a console
 * administrator or an operator with table Scan rights cannot decrypt a refresh token without first
 * changing the key policy, a change CloudTrail records.
 */
export const FIELD_KEY_ADMIN_ACTIONS = [
  'kms:CancelKeyDeletion',
  'kms:DescribeKey',
  'kms:DisableKey',
  'kms:DisableKeyRotation',
  'kms:EnableKey',
  'kms:EnableKeyRotation',
  'kms:GetKeyPolicy',
  'kms:GetKeyRotationStatus',
  'kms:ListGrants',
  'kms:ListKeyPolicies',
  'kms:ListResourceTags',
  'kms:PutKeyPolicy',
  'kms:RevokeGrant',
  'kms:ScheduleKeyDeletion',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:UpdateKeyDescription',
] as const;

/** The field key: rotated yearly by KMS (old versions still decrypt), removed with the tables. */
function createFieldKey(scope: Construct, removalPolicy: RemovalPolicy): kms.Key {
  return new kms.Key(scope, 'FieldKey', {
    description: 'Encrypts refresh tokens and code verifiers inside the Kroger token broker tables',
    enableKeyRotation: true,
    // Deleting the key while the tables are retained would leave every refresh token unreadable.
    removalPolicy,
    // Replaces CDK's default policy (the account may do anything): the account administers, the
    // broker's roles are added one by one, each for what it needs.
    policy: new iam.PolicyDocument({
      statements: [
        new iam.PolicyStatement({
          sid: 'AccountAdministersButCannotUse',
          principals: [new iam.AccountRootPrincipal()],
          actions: [...FIELD_KEY_ADMIN_ACTIONS],
          resources: ['*'],
        }),
      ],
    }),
  });
}

/**
 * A table from its schema. The tokens table's `due` index is sparse: only `active` users carry
 * `refreshShard`, so the refresher queries due items per shard instead of scanning. Keys only: the
 * refresher reads the item it refreshes through the lease update.
 */
function createTable(
  scope: Construct,
  id: string,
  schema: TableSchema,
  encryptionKey: kms.Key,
  removalPolicy: RemovalPolicy,
): dynamodb.Table {
  const table = new dynamodb.Table(scope, id, {
    partitionKey: cdkKey(schema.partitionKey),
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    // The sessions table's items live for minutes, so a restore is of little use there; it stays
    // tiny, so PITR costs next to nothing and both tables keep one backup posture (AwsSolutions-DDB3).
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
    encryptionKey,
    timeToLiveAttribute: schema.ttlAttribute,
    removalPolicy,
  });
  for (const index of schema.indexes) {
    table.addGlobalSecondaryIndex({
      indexName: index.name,
      partitionKey: cdkKey(index.partitionKey),
      sortKey: index.sortKey && cdkKey(index.sortKey),
      projectionType: dynamodb.ProjectionType[index.projection],
    });
  }
  return table;
}

function createClientSecret(scope: Construct, removalPolicy: RemovalPolicy): secretsmanager.Secret {
  const secret = new secretsmanager.Secret(scope, 'ClientSecret', {
    // No secretName: CloudFormation names it (`BrokerClientSecret…-<random>`). A fixed name broke the
    // next deploy after a destroy, as the retained (or pending-deletion) secret still held the name;
    // a generated one never collides, across stacks or deploys. Reusing a secret is explicit: the
    // stack's `clientSecretName`.
    description: 'Kroger OAuth2 client secret (plain SecretString); replace the placeholder after deploy',
    // A random placeholder until the real value is put in; the value never appears in the template.
    generateSecretString: { excludePunctuation: true, passwordLength: 32 },
    removalPolicy,
  });
  Validations.of(secret).acknowledge({
    id: 'AwsSolutions::AwsSolutions-SMG4',
    reason:
      'The value is a client secret issued by Kroger; it can only be rotated in the Kroger developer portal, so there is no rotation Lambda to schedule.',
  });
  return secret;
}

/** A schema key attribute as CDK's table props want it. */
function cdkKey(key: KeyAttribute): dynamodb.Attribute {
  return { name: key.name, type: key.type === 'S' ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER };
}
