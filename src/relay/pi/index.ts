/** The Pi's side of relay mode: its key and state, the up bundle it writes, the down bundle it applies. */
export { PiRelayFiles, type PiRelayState } from './state';
export { exportUpBundle, type UpExport } from './export';
export { applyDownBundle, type ApplyContext, type DownApplyReport } from './apply';
export { exchangeWithRelay, type ExchangeReport, type RelayEndpoint } from './client';
