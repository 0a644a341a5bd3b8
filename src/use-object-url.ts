import { useEffect, useState } from 'react';

/** An object URL for a Blob that lives as long as the component shows it. */
export function useObjectUrl(blob: Blob | null | undefined): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!blob) {
      setUrl(null);
      return;
    }
    const next = URL.createObjectURL(blob);
    setUrl(next);
    return () => URL.revokeObjectURL(next);
  }, [blob]);
  return url;
}

/** Saves a Blob as a file through the browser's download. */
export function downloadBlob(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.click();
  // The click starts the download synchronously; give the browser a moment before revoking.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** "kandinsky-1344x768-seed-12345.png": sorts by size and says how to reproduce it. */
export function pngFileName(settings: { width: number; height: number; seed: number }): string {
  return `kandinsky-${settings.width}x${settings.height}-seed-${settings.seed}.png`;
}
