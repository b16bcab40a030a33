/**
 * Bundles: the file one relay exchange carries each way (docs/relay.md). Write one with
 * BundleWriter, check one with verifyBundle, read one with BundleReader.
 */
export { BundleError, FORMAT_VERSION, type BundleErrorCode, type BundleHeader, type BundleLimits, type BundleRecord, type RecordMeta, type RecordType } from './format';
export { BundleWriter, syncDirectory, type WrittenBundle, type WriterOptions } from './writer';
export { BundleReader, verifyBundle, type ReadOptions } from './reader';
export { generateSigningKey, loadOrCreateSigningKey, publicKeyFromText, publicKeyText, type SigningKey } from './keys';
