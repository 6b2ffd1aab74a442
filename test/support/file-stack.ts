/**
 * The real parts one integration file shares: its own sandbox provider and its own tables in the
 * run's DynamoDB Local, started once before the file's tests and stopped after them.
 */
import { startSandbox, type SandboxHandle, type SandboxOptions } from '../../infra/local/sandbox/launch';
import { createTestStores, START_REAL_PARTS_TIMEOUT_MS, type TestStores } from './stores';

/** A file's sandbox and tables; both are set once the file's first `beforeAll` has run. */
export interface FileStack {
  readonly sandbox: SandboxHandle;
  readonly stores: TestStores;
}

/**
 * Registers the `beforeAll` that starts a sandbox and creates the file's tables (with room for a busy
 * machine, {@link START_REAL_PARTS_TIMEOUT_MS}), and the `afterAll` that stops and closes them. Call it
 * at the top level of a test file, before the file's own `beforeAll`, which then finds both ready.
 * @param tablePrefix names the file's tables (a random suffix is added)
 */
export function useFileStack(tablePrefix: string, sandbox: SandboxOptions): FileStack {
  const stack: { sandbox?: SandboxHandle; stores?: TestStores } = {};
  beforeAll(async () => {
    stack.sandbox = await startSandbox(sandbox);
    stack.stores = await createTestStores(tablePrefix);
  }, START_REAL_PARTS_TIMEOUT_MS);
  afterAll(async () => {
    await stack.sandbox?.stop();
    stack.stores?.client.destroy();
  });
  return {
    get sandbox() {
      if (!stack.sandbox) throw new Error('the sandbox is not started yet: use it in a hook or a test');
      return stack.sandbox;
    },
    get stores() {
      if (!stack.stores) throw new Error('the tables are not created yet: use them in a hook or a test');
      return stack.stores;
    },
  };
}
