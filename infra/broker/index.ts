/**
 * The Kroger token broker construct: its public surface. The construct wires the parts beside it:
 *
 * - `props.ts`: the props and the environments handed to consumers
 * - `defaults.ts`: every default, applied once
 * - `validation.ts`: checks of the props, before anything is created
 * - `storage.ts`: the tables, their KMS key and the client secret
 * - `api.ts`: the HTTP API, its stage and routes, the login and callback URLs
 * - `functions.ts`: the four functions, their entry files and bundling, the refresher's schedule
 * - `grants.ts`: least-privilege grants that also set the environment
 * - `alarms.ts`: the alarms and the refresher's metrics
 * - `broker.ts`: {@link KrogerTokenBroker}, wiring the above
 */
export { KrogerTokenBroker } from './broker';
export { DEFAULT_API_BASE_URL, DEFAULT_OAUTH2_BASE_URL } from './defaults';
export { ENTRY_FILES, HANDLER_EXPORT } from './functions';
export type {
  BrokerLogLevel,
  KrogerTokenBrokerProps,
  LoginLinkEnvironment,
  RefresherMetricName,
  TokenReaderEnvironment,
} from './props';
