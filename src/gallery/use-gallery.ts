import { useCallback, useEffect, useState } from 'react';
import { GalleryError, type GalleryRecord, type GalleryStore } from './gallery-store';

/** The gallery's records, loaded from IndexedDB on start and refreshed after every change. */
export function useGallery(store: GalleryStore) {
  const [records, setRecords] = useState<readonly GalleryRecord[] | null>(null);
  const [error, setError] = useState<GalleryError | null>(null);

  const refresh = useCallback(async () => {
    try {
      setRecords(await store.list());
    } catch (e) {
      setRecords([]);
      setError(e instanceof GalleryError ? e : new GalleryError('STORAGE_FAILED', String(e)));
    }
  }, [store]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  const remove = useCallback(
    async (id: string) => {
      try {
        await store.delete(id);
      } catch (e) {
        setError(e instanceof GalleryError ? e : new GalleryError('STORAGE_FAILED', String(e)));
      }
      await refresh();
    },
    [store, refresh],
  );

  return { records, error, refresh, remove };
}
