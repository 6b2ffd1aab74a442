/**
 * The `kroger-token-broker/cdk` export of the published package: the construct, its props, and the
 * environments its grants hand out (`addTokenReader`, `grantReadTokens` with `readerEnvironment`,
 * `addLoginLinkCreator`, `grantCreateLoginLinks` with `loginLinkEnvironment`). Imported from the
 * package, the construct deploys the prebuilt function bundles shipped beside it (see
 * `PREBUILT_DIR` in functions.ts): the app needs only aws-cdk-lib and constructs.
 *
 * @example
 * import { KrogerTokenBroker } from 'kroger-token-broker/cdk';
 * const broker = new KrogerTokenBroker(this, 'Broker', { clientId: 'my-app-123' });
 * broker.addTokenReader(cartFunction);
 */
export {
  DEFAULT_API_BASE_URL,
  DEFAULT_OAUTH2_BASE_URL,
  KrogerTokenBroker,
  type BrokerLogLevel,
  type KrogerTokenBrokerProps,
  type LoginLinkEnvironment,
  type RefresherMetricName,
  type TokenReaderEnvironment,
} from './index';
