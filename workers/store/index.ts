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
  type FetchFunction,
  FileSource,
  type ModelSource,
  type PickedFile,
  type SourceRange,
  UrlSource,
} from './model-source';
export {
  type CacheStatus,
  type ComponentSelection,
  type ComponentState,
  type ComponentStatus,
  createWorkerModelStore,
  DEFAULT_CHUNK_BYTES,
  type DownloadOptions,
  type DownloadProgress,
  type DownloadResult,
  ModelStore,
  type ModelStoreOptions,
  type OnnxModelBytes,
  type OpenOptions,
  type PersistenceState,
  type StorageManagerLike,
  selectComponents,
  type VerifyReport,
} from './model-store';
export { openStoreDatabase, type UseStore } from './store-database';
export {
  isStoreError,
  STORE_ERROR_CODES,
  StoreError,
  type StoreErrorCode,
  type StoreErrorDetails,
} from './store-error';
