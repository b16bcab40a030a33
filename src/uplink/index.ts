export { UplinkRunner, RunInProgressError } from './runner';
export type { RunOptions, RunReport, ProgressSnapshot, UplinkSettings } from './runner';
export { UplinkScheduler, validateCron } from './scheduler';
export { ControlServer, controlSocketPath, requestDaemon } from './control';
export { FETCH_FULL_FOLDER, localFolderFor } from './folders';
