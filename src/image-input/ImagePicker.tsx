import { useEffect, useRef, useState } from 'react';
import { coverCrop } from './image-dimensions';
import { decodeImageFile, firstImageFile, ImageInputError, type SourceImage } from './load-image';

interface Props {
  readonly label: string;
  readonly source: SourceImage | null;
  readonly onSource: (source: SourceImage | null) => void;
  /** The output size the picture will be fitted to: the preview shows that crop. */
  readonly width: number;
  readonly height: number;
  /** Listen for Ctrl/Cmd+V anywhere on the page while this picker is shown. */
  readonly acceptPaste?: boolean;
  /** Hide the preview when the caller shows the picture itself (the mask painter). */
  readonly showPreview?: boolean;
}

/** Drop, paste or pick a picture; shows it cropped to the output aspect, or why it can't be used. */
export function ImagePicker({
  label,
  source,
  onSource,
  width,
  height,
  acceptPaste = true,
  showPreview = true,
}: Props) {
  const [error, setError] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const preview = useRef<HTMLCanvasElement>(null);

  const load = async (file: Blob | null, name: string) => {
    if (!file) {
      setError('That was not an image file.');
      return;
    }
    try {
      onSource(await decodeImageFile(file, name));
      setError(null);
    } catch (e) {
      setError(e instanceof ImageInputError ? e.message : `The picture could not be read: ${String(e)}`);
    }
  };
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    if (!acceptPaste) return;
    const onPaste = (event: ClipboardEvent) => {
      const file = firstImageFile(event.clipboardData);
      // Let text paste into text fields as usual.
      if (!file) return;
      event.preventDefault();
      void loadRef.current(file, 'pasted image');
    };
    window.addEventListener('paste', onPaste);
    return () => window.removeEventListener('paste', onPaste);
  }, [acceptPaste]);

  useEffect(() => {
    const canvas = preview.current;
    if (!canvas || !source) return;
    const scale = Math.min(1, 320 / Math.max(width, height));
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    const crop = coverCrop(source.bitmap.width, source.bitmap.height, width, height);
    canvas
      .getContext('2d')
      ?.drawImage(source.bitmap, crop.x, crop.y, crop.width, crop.height, 0, 0, canvas.width, canvas.height);
  }, [source, width, height]);

  return (
    <fieldset
      className={`image-picker${dragging ? ' dragging' : ''}`}
      data-testid="image-picker"
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        const file = firstImageFile(e.dataTransfer);
        void load(file, file?.name ?? 'dropped file');
      }}
    >
      <legend className="picker-label">{label}</legend>
      <p className="hint">Drop a picture here, paste one (Ctrl/Cmd+V), or choose a file.</p>
      <label className="button secondary file-button">
        Choose picture…
        <input
          type="file"
          accept="image/png,image/jpeg,image/webp,image/gif,image/avif"
          className="visually-hidden"
          onChange={(e) => {
            const file = e.target.files?.[0] ?? null;
            e.target.value = '';
            if (file) void load(file, file.name);
          }}
        />
      </label>
      {source && (
        <>
          <button type="button" className="link" onClick={() => onSource(null)}>
            Remove picture
          </button>
          <p className="detail" data-testid="source-info">
            {source.name}: {source.bitmap.width}×{source.bitmap.height}, used centre-cropped at {width}×
            {height}
          </p>
          {showPreview && (
            <canvas
              ref={preview}
              className="input-preview"
              aria-label={`Preview of ${source.name} as it will be used`}
            />
          )}
        </>
      )}
      {error && (
        <p className="field-error" role="alert" data-testid="image-error">
          {error}
        </p>
      )}
    </fieldset>
  );
}
