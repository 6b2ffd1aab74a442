/**
 * Creating an AWS SDK client on Node 20 prints the SDK's "upgrade your Node.js" notice once per
 * process (its releases after January 2027 will require Node 22). The broker and the reader support
 * Node 20.19+ until then, so the notice is noise in a consumer's logs. Unlike `quiet.ts` (imported
 * for its side effect by this repository's command-line entries), this turns it off only while one
 * of our own clients is built, through the SDK's own switch, and leaves `process.env` as it was.
 */

const SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/**
 * Runs `make` (an SDK client constructor: the notice is emitted there) with the notice off, unless
 * the process already decided (the variable is set either way). The SDK remembers that its notice
 * was handled, so a client the consumer builds afterwards prints none either: the notice is once
 * per process by the SDK's design, and the process has met it.
 */
export function withoutNodeVersionNotice<T>(make: () => T): T {
  if (process.env[SWITCH] !== undefined) return make();
  process.env[SWITCH] = 'true';
  try {
    return make();
  } finally {
    delete process.env[SWITCH];
  }
}
