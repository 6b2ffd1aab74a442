/**
 * The file through which `npm start` tells `npm run tokens` where its DynamoDB Local and sandbox
 * are: one definition for the writer (infra/local/stack.ts) and the reader (the CLI).
 */
import { join } from 'node:path';

/** `.local/stack.json` under the working directory. */
export function localStateFile(cwd = process.cwd()): string {
  return join(cwd, '.local', 'stack.json');
}

/** What `npm start` writes to {@link localStateFile}. */
export interface LocalStackState {
  readonly pid: number;
  /** Environment a client of this stack should use (endpoints, table names, sandbox client). */
  readonly env: Record<string, string>;
}
