export { loadConfig, accountsWithoutCredentials, defaultConfigPath, addressesOf, checkSecretFileMode, parseYamlFile, ConfigError } from './load';
export type { LoadedConfig, ResolvedUser, ResolvedAccount } from './load';
export type { GatewayConfig, ListenerConfig, WebListenerConfig, AccountMap, Credentials } from './schema';
