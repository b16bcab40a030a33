export { UplinkRunner } from './runner';
export { RunInProgressError } from './run-in-progress';
export type { RunOptions, RunReport, ProgressSnapshot } from './runner';
export { createUplinkRunner, uplinkSettings } from './settings';
export type { UplinkSettings } from './settings';
export { UplinkScheduler, validateCron } from './scheduler';
export { ControlServer, controlSocketPath, requestDaemon } from './control';
export { FETCH_FULL_FOLDER, localFolderFor } from './folders';
