/** The relay: its directory and keys (home.ts), each Pi's exchanges (exchange.ts), its HTTPS face (http.ts). */
export { RelayHome, type PairedPi } from './home';
export { PiExchange, type DownBundleInfo } from './exchange';
export { startRelayServer, type RelayServer, type RelayServerOptions } from './http';
