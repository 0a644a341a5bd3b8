import type { ModelDownloadProgress } from '../../workers/api';
import { formatBytes } from '../../workers/format';

/** A download's progress: bytes, speed, time left and the component being fetched. */
export function DownloadBar({ progress }: { readonly progress: ModelDownloadProgress }) {
  const fraction = progress.totalBytesTotal > 0 ? progress.totalBytesDone / progress.totalBytesTotal : 0;
  return (
    <div className="download-progress" data-testid="download-progress">
      <progress value={fraction} max={1} aria-label="Download progress" />
      <span className="detail">
        {formatBytes(progress.totalBytesDone)} of {formatBytes(progress.totalBytesTotal)}
        {progress.bytesPerSecond !== null && ` · ${formatBytes(progress.bytesPerSecond)}/s`}
        {progress.etaSeconds !== null && ` · ${Math.ceil(progress.etaSeconds)} s left`} ·{' '}
        {progress.componentId}
      </span>
    </div>
  );
}
