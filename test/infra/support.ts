/**
 * Helpers for the infra tests: an App with the same context (feature flags) as `cdk synth`, and
 * readable views of a synthesized template (statements by construct name instead of logical ids).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';

export const PROJECT_ROOT = path.join(__dirname, '..', '..');

/** Bundling a real NodejsFunction takes seconds; each test file synthesizes once in beforeAll. */
export const SYNTH_TIMEOUT_MS = 180_000;

/** The context of cdk.json, so tests see the same feature flags as `cdk synth`. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8'));
  return cdkJson.context ?? {};
}

const tempDirs: string[] = [];

/**
 * A new directory under the system temp directory, removed with everything in it once the test file
 * that asked for it has finished (synth output and bundles take megabytes each).
 */
export function tempDir(prefix = 'broker-infra-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

// Registered when a test file imports this module, so it runs after that file's tests.
afterAll(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A fresh App writing to its own temp directory (removed after the test file).
 * @param bundle false skips esbuild (for tests that do not look at the code assets)
 */
export function newApp(context: Record<string, unknown> = {}, bundle = true): App {
  return new App({
    outdir: tempDir(),
    context: {
      ...cdkJsonContext(),
      // The CLI turns this on; the helpers find resources by their construct path.
      'aws:cdk:enable-path-metadata': true,
      ...(bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
      ...context,
    },
  });
}

type Resources = Record<string, { Type: string; Properties?: any; Metadata?: any; DeletionPolicy?: string }>;

/** The construct path of each resource, e.g. `Broker/Login/Resource`, by logical id (stack name removed). */
function pathsByLogicalId(template: Template): Map<string, string> {
  const resources = template.toJSON().Resources as Resources;
  const paths = new Map<string, string>();
  for (const [logicalId, resource] of Object.entries(resources)) {
    const cdkPath: string | undefined = resource.Metadata?.['aws:cdk:path'];
    if (cdkPath) paths.set(logicalId, cdkPath.split('/').slice(1).join('/'));
  }
  return paths;
}

/** The logical id of the resource at construct path `suffix` (e.g. `Broker/Login/Resource`). */
export function logicalIdOf(template: Template, suffix: string): string {
  const matches = [...pathsByLogicalId(template)].filter(([, p]) => p === suffix || p.endsWith(`/${suffix}`));
  if (matches.length !== 1) {
    throw new Error(`expected one resource at "${suffix}", found ${matches.length}`);
  }
  return matches[0][0];
}

/** The properties of the resource at construct path `suffix`. */
export function propertiesOf(template: Template, suffix: string): any {
  return (template.toJSON().Resources as Resources)[logicalIdOf(template, suffix)].Properties;
}

/**
 * Renders a resource reference as the construct it points at: `{"Fn::GetAtt": ["BrokerTokensTable…",
 * "Arn"]}` becomes `Broker/TokensTable.Arn`, `{"Ref": …}` becomes `Broker/ClientSecret`.
 */
function describeResource(value: unknown, paths: Map<string, string>): string {
  const name = (logicalId: string): string => (paths.get(logicalId) ?? logicalId).replace(/\/Resource$/, '');
  if (typeof value === 'string') return value;
  const v = value as any;
  if (v?.Ref) return name(v.Ref);
  if (v?.['Fn::GetAtt']) return `${name(v['Fn::GetAtt'][0])}.${v['Fn::GetAtt'][1]}`;
  if (v?.['Fn::Join'])
    return v['Fn::Join'][1].map((part: unknown) => describeResource(part, paths)).join(v['Fn::Join'][0]);
  return JSON.stringify(v);
}

/**
 * Every statement of every inline policy attached to the role `roleLogicalId`, one sorted line per
 * resource: `"dynamodb:GetItem,dynamodb:UpdateItem -> Broker/TokensTable.Arn"`.
 */
export function policyLinesForRole(template: Template, roleLogicalId: string): string[] {
  const resources = template.toJSON().Resources as Resources;
  const paths = pathsByLogicalId(template);
  const lines: string[] = [];
  for (const resource of Object.values(resources)) {
    if (resource.Type !== 'AWS::IAM::Policy') continue;
    const roles: unknown[] = resource.Properties.Roles ?? [];
    if (!roles.some((r: any) => r?.Ref === roleLogicalId)) continue;
    for (const statement of resource.Properties.PolicyDocument.Statement) {
      expect(statement.Effect).toBe('Allow');
      const actions = [statement.Action].flat().sort().join(',');
      for (const res of [statement.Resource].flat()) {
        const condition = statement.Condition ? ` if ${JSON.stringify(statement.Condition)}` : '';
        lines.push(`${actions} -> ${describeResource(res, paths)}${condition}`);
      }
    }
  }
  return lines.sort();
}

/** The role logical id of the Lambda function at construct path `fnPath` (e.g. `Broker/Login`). */
export function roleOfFunction(template: Template, fnPath: string): string {
  const fn = propertiesOf(template, `${fnPath}/Resource`);
  return fn.Role['Fn::GetAtt'][0];
}

/** The environment variables of the Lambda function at `fnPath`, references rendered by construct. */
export function environmentOf(template: Template, fnPath: string): Record<string, string> {
  const paths = pathsByLogicalId(template);
  const variables: Record<string, unknown> = propertiesOf(template, `${fnPath}/Resource`).Environment?.Variables ?? {};
  return Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, describeResource(v, paths)]));
}
