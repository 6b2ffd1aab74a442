/**
 * The broker's IAM grants, each naming exact actions on exact resources (no `Table.grant*()`
 * wildcards), and each setting the environment variable that names the resource it grants: a
 * function is never told about a resource it may not use, and never misses one it may.
 */
import { Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { FieldPurpose } from '../../functions/core/envelope';
import { DUE_INDEX, LINK_KEY_PREFIX, READER_ATTRIBUTES, REFUSAL_COUNTER_KEY_PREFIX } from '../../functions/core/schema';
import type { BrokerStorage } from './storage';

/** Grants actions on the tokens table (and the table key) and sets `TOKENS_TABLE`. */
export function grantTokens(fn: lambda.Function, storage: BrokerStorage, ...actions: string[]): void {
  grantTable(fn, storage.tokensTable, storage.tableKey, actions);
  fn.addEnvironment('TOKENS_TABLE', storage.tokensTable.tableName);
}

/** Grants actions on the sessions table (and the table key) and sets `SESSIONS_TABLE`. */
export function grantSessions(fn: lambda.Function, storage: BrokerStorage, ...actions: string[]): void {
  grantTable(fn, storage.sessionsTable, storage.tableKey, actions);
  fn.addEnvironment('SESSIONS_TABLE', storage.sessionsTable.tableName);
}

/** `actions` on the table itself, and what DynamoDB needs of the table key to perform them. */
export function grantTable(
  grantee: iam.IGrantable,
  table: dynamodb.Table,
  tableKey: kms.Key,
  actions: string[],
): iam.Grant {
  // The table ARN only: Table.grant() would add `<table>/index/*`; only the refresher queries an
  // index, and it gets that one index alone (grantDueIndex).
  const grant = iam.Grant.addToPrincipal({ grantee, actions, resourceArns: [table.tableArn] });
  // DynamoDB uses the CMK on the caller's behalf: reads need Decrypt; writers get Encrypt and
  // GenerateDataKey as well, named explicitly instead of the `kms:GenerateDataKey*`/`ReEncrypt*`
  // wildcards of Table.grantWriteData().
  const writes = actions.some((action) => action !== 'dynamodb:GetItem');
  return grant.combine(
    writes
      ? grantKey(grantee, tableKey, 'kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey')
      : grantKey(grantee, tableKey, 'kms:Decrypt'),
  );
}

/**
 * `dynamodb:UpdateItem` on the mass-refusal counters only: the sessions table's items whose key starts
 * with `REFUSAL_COUNTER_KEY_PREFIX` (IAM `dynamodb:LeadingKeys`), never a login attempt or a connect
 * link. Sets `SESSIONS_TABLE`. The table key's Encrypt/Decrypt come with the function's token grant
 * (one key encrypts both tables).
 */
export function grantRefusalCounters(fn: lambda.Function, storage: BrokerStorage): void {
  iam.Grant.addToPrincipal({
    grantee: fn,
    actions: ['dynamodb:UpdateItem'],
    resourceArns: [storage.sessionsTable.tableArn],
    conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${REFUSAL_COUNTER_KEY_PREFIX}*`] } },
  });
  fn.addEnvironment('SESSIONS_TABLE', storage.sessionsTable.tableName);
}

/**
 * `dynamodb:Query` on the `due` index only (not the table, not `index/*`). The function also needs
 * `kms:Decrypt` on the table key, which grantTokens gives.
 */
export function grantDueIndex(fn: lambda.Function, tokensTable: dynamodb.Table): void {
  iam.Grant.addToPrincipal({
    grantee: fn,
    actions: ['dynamodb:Query'],
    resourceArns: [`${tokensTable.tableArn}/index/${DUE_INDEX}`],
  });
}

/**
 * `events:PutEvents` on the broker's bus only, and `EVENT_BUS_NAME`. The ARN, not the name, goes
 * into the variable: PutEvents takes either, and only the ARN reaches a bus in another account.
 */
export function grantPutEvents(fn: lambda.Function, eventBus: events.IEventBus): void {
  iam.Grant.addToPrincipal({ grantee: fn, actions: ['events:PutEvents'], resourceArns: [eventBus.eventBusArn] });
  fn.addEnvironment('EVENT_BUS_NAME', eventBus.eventBusArn);
}

/** What a function does with the field key, per purpose (the KMS encryption context `purpose`). */
export interface FieldKeyUse {
  /** Purposes it encrypts for (`kms:GenerateDataKey`). */
  readonly encrypt?: readonly FieldPurpose[];
  /** Purposes it decrypts for (`kms:Decrypt`). */
  readonly decrypt?: readonly FieldPurpose[];
}

/**
 * Lets `fn` use the field key for exactly `use`, and sets `FIELD_KEY_ARN`. Each permission is given
 * twice, with the same condition on the encryption context: in the key policy (which, unlike the
 * table key's, does not defer to IAM, so it is what decides) and in the role's policy (so the role
 * reads as what it may do). A role that may decrypt `sessions` fields (code verifiers) cannot decrypt
 * a refresh token (`tokens`) with that right.
 */
export function grantFieldKey(fn: lambda.Function, fieldKey: kms.Key, use: FieldKeyUse): void {
  const role = fn.role;
  if (!role) throw new Error(`${fn.node.path} has no role to grant the field key to`);
  const purposes = [...new Set([...(use.encrypt ?? []), ...(use.decrypt ?? [])])].sort();
  for (const purpose of purposes) {
    const actions = [
      ...(use.decrypt?.includes(purpose) ? ['kms:Decrypt'] : []),
      ...(use.encrypt?.includes(purpose) ? ['kms:GenerateDataKey'] : []),
    ];
    const conditions = { StringEquals: { 'kms:EncryptionContext:purpose': purpose } };
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions, resources: [fieldKey.keyArn], conditions }));
    fieldKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: `${fn.node.id}${purpose === 'tokens' ? 'Tokens' : 'Sessions'}`,
        principals: [new iam.ArnPrincipal(role.roleArn)],
        actions,
        resources: ['*'],
        conditions,
      }),
    );
  }
  fn.addEnvironment('FIELD_KEY_ARN', fieldKey.keyArn);
}

function grantKey(grantee: iam.IGrantable, tableKey: kms.Key, ...actions: string[]): iam.Grant {
  return iam.Grant.addToPrincipal({ grantee, actions, resourceArns: [tableKey.keyArn] });
}

/**
 * `secretsmanager:GetSecretValue` on the client secret (and `kms:Decrypt` through Secrets Manager
 * when the secret has its own key), and `CLIENT_SECRET_ARN`. The value itself never goes into
 * the environment.
 */
export function grantClientSecret(fn: lambda.Function, secret: secretsmanager.ISecret): void {
  iam.Grant.addToPrincipal({
    grantee: fn,
    actions: ['secretsmanager:GetSecretValue'],
    // An imported-by-name secret has no full ARN; its ARN then ends in a 6-character suffix.
    resourceArns: [secret.secretFullArn ?? `${secret.secretArn}-??????`],
  });
  if (secret.encryptionKey) {
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [secret.encryptionKey.keyArn],
        conditions: {
          // The broker's functions live in the broker's stack: its region is the function's.
          StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(fn).region}.amazonaws.com` },
        },
      }),
    );
  }
  // GetSecretValue takes an ARN or a name; an imported-by-name secret has no full ARN to give.
  fn.addEnvironment('CLIENT_SECRET_ARN', secret.secretFullArn ?? secret.secretName);
}

/**
 * What a token reader gets (see `KrogerTokenBroker.grantReadTokens`): `GetItem` of the reader
 * attributes on the tokens table, `kms:Decrypt` on its key, and invoking the refresh function.
 */
export function grantReaderAccess(
  grantee: iam.IGrantable,
  storage: BrokerStorage,
  refreshFunction: lambda.IFunction,
): iam.Grant {
  return iam.Grant.addToPrincipal({
    grantee,
    actions: ['dynamodb:GetItem'],
    resourceArns: [storage.tokensTable.tableArn],
    conditions: {
      // Every attribute the request names (key, projection) must be on the list...
      'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...READER_ATTRIBUTES] },
      // ...and it must return only the projected ones.
      StringEqualsIfExists: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES' },
    },
  })
    .combine(grantKey(grantee, storage.tableKey, 'kms:Decrypt'))
    .combine(
      iam.Grant.addToPrincipal({
        grantee,
        actions: ['lambda:InvokeFunction'],
        // The unqualified ARN only: readers invoke $LATEST, never a pinned version.
        resourceArns: [refreshFunction.functionArn],
      }),
    );
}

/**
 * What an app backend that connects accounts gets (see `KrogerTokenBroker.grantCreateLoginLinks`):
 * `PutItem` of connect links on the sessions table (only items keyed `link#...`, returning
 * nothing), what DynamoDB needs of the table key for that write, and invoking the complete function.
 * Nothing that reads an item: a pending connection's tokens, a login attempt's verifier and the
 * tokens table stay out of its reach, and the complete function answers ids only.
 */
export function grantLinkCreatorAccess(
  grantee: iam.IGrantable,
  storage: BrokerStorage,
  completeFunction: lambda.IFunction,
): iam.Grant {
  return iam.Grant.addToPrincipal({
    grantee,
    actions: ['dynamodb:PutItem'],
    resourceArns: [storage.sessionsTable.tableArn],
    conditions: {
      // Only connect links: a put on a pending connection's or login attempt's key could replace
      // it, and (with ReturnValues or on a failed condition) read it back.
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${LINK_KEY_PREFIX}*`] },
      // A put that returns the replaced item would be a read.
      StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' },
    },
  })
    .combine(grantKey(grantee, storage.tableKey, 'kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'))
    .combine(
      iam.Grant.addToPrincipal({
        grantee,
        actions: ['lambda:InvokeFunction'],
        // The unqualified ARN only, as for readers and the refresh function.
        resourceArns: [completeFunction.functionArn],
      }),
    );
}
