/// <reference types="vite-plugin-pwa/react" />
import { useRegisterSW } from 'virtual:pwa-register/react';

/**
 * Service-worker lifecycle for people: "ready to work offline" once the app shell and the ORT
 * runtime are cached, and "update available — reload" when a new version is waiting. The new
 * version never takes over by itself: a running generation would lose its worker.
 */
export function UpdatePrompt() {
  const {
    needRefresh: [needRefresh, setNeedRefresh],
    offlineReady: [offlineReady, setOfflineReady],
    updateServiceWorker,
  } = useRegisterSW();
  if (!needRefresh && !offlineReady) return null;
  return (
    <div className="pwa-status" role="status" data-testid="pwa-status">
      {needRefresh ? (
        <>
          <span>An update is available.</span>
          <button type="button" className="primary" onClick={() => void updateServiceWorker(true)}>
            Reload
          </button>
          <button type="button" className="secondary" onClick={() => setNeedRefresh(false)}>
            Later
          </button>
        </>
      ) : (
        <>
          <span>Ready to work offline.</span>
          <button type="button" className="secondary" onClick={() => setOfflineReady(false)}>
            OK
          </button>
        </>
      )}
    </div>
  );
}
