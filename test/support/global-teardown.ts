import { rmSync } from 'node:fs';

/** Stops what global-setup started, and removes the test key files. */
export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __dynamoLocal?: { stop(): Promise<void> } }).__dynamoLocal?.stop();
  if (process.env.TEST_FIELD_KEYS_DIR) rmSync(process.env.TEST_FIELD_KEYS_DIR, { recursive: true, force: true });
}
