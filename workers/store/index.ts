/** The model store's public surface: what the generator worker and the tests import. */
export {
  DEFAULT_RETRY,
  type FileStage,
  type RetryPolicy,
  type Sha256Factory,
  type Sleep,
} from './file-download';
export { fileLockName, InProcessLocks, type LockManagerLike } from './file-locks';
export {
  type ComponentSelection,
  type DownloadOptions,
  type DownloadProgress,
  type DownloadResult,
  type PersistenceState,
  selectComponents,
} from './model-download';
export {
  type FailureProbe,
  type FetchFunction,
  FileSource,
  type ModelSource,
  noCorsProbe,
  type OriginPolicy,
  type PickedFile,
  type SourceRange,
  UrlSource,
} from './model-source';
export {
  createWorkerModelStore,
  DEFAULT_CHUNK_BYTES,
  ModelStore,
  type ModelStoreOptions,
  type StorageManagerLike,
} from './model-store';
export { openStoreDatabase, type UseStore } from './store-database';
export {
  isStoreError,
  STORE_ERROR_CODES,
  StoreError,
  type StoreErrorCode,
  type StoreErrorDetails,
} from './store-error';
export type {
  CacheStatus,
  ComponentState,
  ComponentStatus,
  OnnxModelBytes,
  OpenOptions,
  VerifyReport,
} from './stored-files';
