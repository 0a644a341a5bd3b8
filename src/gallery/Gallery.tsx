import { useEffect, useId, useRef, useState } from 'react';
import type { GenerationSettings } from '../../workers/api';
import { readSettingsFromPng, SettingsImportError } from '../../workers/engine/png-settings';
import type { SizeLimits } from '../../workers/engine/settings';
import { ErrorNotice } from '../generate/ErrorNotice';
import { downloadBlob, pngFileName, useObjectUrl } from '../use-object-url';
import type { GalleryError, GalleryRecord, GalleryStore } from './gallery-store';

export type InputTab = 'img2img' | 'inpaint';

interface Props {
  readonly store: GalleryStore;
  readonly records: readonly GalleryRecord[] | null;
  readonly error: GalleryError | null;
  readonly limits: SizeLimits;
  readonly onDelete: (id: string) => Promise<void>;
  readonly onReuseSettings: (settings: GenerationSettings) => void;
  readonly onUseAsInput: (png: Blob, record: GalleryRecord, tab: InputTab) => void;
}

const MODE_NAMES: Readonly<Record<GenerationSettings['mode'], string>> = {
  txt2img: 'text → image',
  img2img: 'image → image',
  inpaint: 'inpaint',
  depth: 'depth',
};

/** Every image made on this device, kept in IndexedDB: open, compare, reuse, download, delete. */
export function Gallery({ store, records, error, limits, onDelete, onReuseSettings, onUseAsInput }: Props) {
  const id = useId();
  const [open, setOpen] = useState<GalleryRecord | null>(null);
  const [compare, setCompare] = useState<readonly string[]>([]);
  const [comparing, setComparing] = useState(false);
  const [importMessage, setImportMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [dragging, setDragging] = useState(false);

  const importPng = async (file: File) => {
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const settings = readSettingsFromPng(bytes, limits);
      onReuseSettings(settings);
      setImportMessage({
        ok: true,
        text: `Settings restored from ${file.name}: the form above is filled in.`,
      });
    } catch (e) {
      const reason = e instanceof SettingsImportError ? e.message : String(e);
      setImportMessage({ ok: false, text: `${file.name}: ${reason} Nothing was changed.` });
    }
  };

  const toggleCompare = (recordId: string) =>
    setCompare((previous) =>
      previous.includes(recordId)
        ? previous.filter((x) => x !== recordId)
        : // Keep the two most recent choices: picking a third replaces the oldest.
          [...previous, recordId].slice(-2),
    );
  const compared = compare
    .map((recordId) => records?.find((r) => r.id === recordId))
    .filter((r): r is GalleryRecord => r !== undefined);

  return (
    <section
      className={`panel gallery${dragging ? ' dragging' : ''}`}
      aria-labelledby={`${id}-heading`}
      data-testid="gallery"
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        const file = e.dataTransfer.files[0];
        if (file) void importPng(file);
      }}
    >
      <div className="gallery-header">
        <h2 id={`${id}-heading`}>Gallery</h2>
        <div className="button-row">
          <button
            type="button"
            className="secondary"
            disabled={compared.length !== 2}
            onClick={() => setComparing(true)}
          >
            Compare selected ({compared.length}/2)
          </button>
          <label className="button secondary">
            Import PNG…
            <input
              type="file"
              accept="image/png"
              className="visually-hidden"
              data-testid="import-png"
              onChange={(e) => {
                const file = e.target.files?.[0];
                e.target.value = '';
                if (file) void importPng(file);
              }}
            />
          </label>
        </div>
      </div>
      <p className="hint">Drop a Kandinsky Web PNG here to restore the settings it was made with.</p>
      {importMessage && (
        <p
          className={importMessage.ok ? 'notice' : 'notice error'}
          role={importMessage.ok ? 'status' : 'alert'}
          data-testid="import-message"
        >
          {importMessage.text}
        </p>
      )}
      {error && <ErrorNotice code={error.code} message={error.message} />}
      {records === null ? (
        <p aria-busy="true">Opening the gallery…</p>
      ) : records.length === 0 ? (
        <p className="empty-output" data-testid="gallery-empty">
          No pictures yet. Everything you generate is kept here, on this device.
        </p>
      ) : (
        <ul className="gallery-grid" aria-label="Saved pictures">
          {records.map((record) => (
            <li key={record.id} className="gallery-item" data-testid="gallery-item">
              <button
                type="button"
                className="thumb-button"
                onClick={() => setOpen(record)}
                aria-label={`Open: ${record.settings.prompt || 'untitled'} (seed ${record.settings.seed})`}
              >
                <StoredImage store={store} record={record} className="thumb" />
              </button>
              <div className="gallery-caption">
                <span className="prompt-line">{record.settings.prompt || <em>no prompt</em>}</span>
                <small>
                  {record.width}×{record.height} · seed {record.settings.seed}
                </small>
                <label className="inline">
                  <input
                    type="checkbox"
                    checked={compare.includes(record.id)}
                    onChange={() => toggleCompare(record.id)}
                  />
                  Compare
                </label>
              </div>
            </li>
          ))}
        </ul>
      )}
      {open && (
        <Modal title="Picture" onClose={() => setOpen(null)}>
          <ImageDetails
            store={store}
            record={open}
            onClose={() => setOpen(null)}
            onDelete={async () => {
              setOpen(null);
              setCompare((previous) => previous.filter((x) => x !== open.id));
              await onDelete(open.id);
            }}
            onReuseSettings={() => {
              onReuseSettings(open.settings);
              setOpen(null);
            }}
            onUseAsInput={async (tab) => {
              const png = await store.png(open.id);
              if (png) onUseAsInput(png, open, tab);
              setOpen(null);
            }}
          />
        </Modal>
      )}
      {comparing && compared.length === 2 && (
        <Modal title="Compare" onClose={() => setComparing(false)} wide>
          <div className="compare">
            {compared.map((record) => (
              <figure key={record.id}>
                <StoredImage store={store} record={record} className="large" />
                <figcaption>
                  <SettingsList
                    settings={record.settings}
                    other={compared.find((r) => r !== record)?.settings}
                  />
                </figcaption>
              </figure>
            ))}
          </div>
        </Modal>
      )}
    </section>
  );
}

function StoredImage({
  store,
  record,
  className,
}: {
  readonly store: GalleryStore;
  readonly record: GalleryRecord;
  readonly className: string;
}) {
  const [png, setPng] = useState<Blob | null>(null);
  useEffect(() => {
    let live = true;
    void store.png(record.id).then((blob) => {
      if (live) setPng(blob ?? null);
    });
    return () => {
      live = false;
    };
  }, [store, record.id]);
  const url = useObjectUrl(png);
  return url ? (
    <img
      src={url}
      alt={record.settings.prompt || 'Generated picture'}
      width={record.width}
      height={record.height}
      className={className}
      loading="lazy"
    />
  ) : (
    <span className={`${className} placeholder`} aria-hidden="true" />
  );
}

/** A native modal dialog: focus moves in, Escape closes, focus returns to the opener. */
function Modal({
  title,
  onClose,
  wide = false,
  children,
}: {
  readonly title: string;
  readonly onClose: () => void;
  readonly wide?: boolean;
  readonly children: React.ReactNode;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const headingId = useId();
  useEffect(() => {
    const element = dialog.current;
    element?.showModal();
    return () => element?.close();
  }, []);
  return (
    <dialog
      ref={dialog}
      className={wide ? 'modal wide' : 'modal'}
      aria-labelledby={headingId}
      onClose={onClose}
      onCancel={onClose}
    >
      <div className="modal-header">
        <h3 id={headingId}>{title}</h3>
        <button type="button" className="secondary" onClick={onClose}>
          Close
        </button>
      </div>
      {children}
    </dialog>
  );
}

function ImageDetails({
  store,
  record,
  onDelete,
  onReuseSettings,
  onUseAsInput,
}: {
  readonly store: GalleryStore;
  readonly record: GalleryRecord;
  readonly onClose: () => void;
  readonly onDelete: () => Promise<void>;
  readonly onReuseSettings: () => void;
  readonly onUseAsInput: (tab: InputTab) => Promise<void>;
}) {
  return (
    <div className="image-details">
      <StoredImage store={store} record={record} className="large" />
      <div>
        <SettingsList settings={record.settings} />
        <p className="detail">Made {new Date(record.createdAt).toLocaleString()}</p>
        <div className="button-row vertical">
          <button type="button" className="primary" onClick={onReuseSettings}>
            Reuse settings
          </button>
          <button type="button" className="secondary" onClick={() => void onUseAsInput('img2img')}>
            Use as input (image → image)
          </button>
          <button type="button" className="secondary" onClick={() => void onUseAsInput('inpaint')}>
            Use as input (inpaint)
          </button>
          <button
            type="button"
            className="secondary"
            onClick={async () => {
              const png = await store.png(record.id);
              if (png) downloadBlob(png, pngFileName(record.settings));
            }}
          >
            Download PNG
          </button>
          <button type="button" className="danger" onClick={() => void onDelete()}>
            Delete
          </button>
        </div>
      </div>
    </div>
  );
}

/** The settings as a definition list; with `other`, the values that differ are highlighted. */
function SettingsList({
  settings,
  other,
}: {
  readonly settings: GenerationSettings;
  readonly other?: GenerationSettings | undefined;
}) {
  const rows: [keyof GenerationSettings, string, string][] = [
    ['prompt', 'Prompt', settings.prompt || '—'],
    ['negativePrompt', 'Negative', settings.negativePrompt || '—'],
    ['mode', 'Mode', MODE_NAMES[settings.mode]],
    ['width', 'Size', `${settings.width}×${settings.height}`],
    ['seed', 'Seed', String(settings.seed)],
    ['steps', 'Steps', `${settings.steps} (${settings.scheduler ?? 'the set’s own scheduler'})`],
    ['guidance', 'Guidance', String(settings.guidance)],
    ['priorSteps', 'Prior', `${settings.priorSteps} steps, guidance ${settings.priorGuidance}`],
  ];
  if (settings.mode === 'img2img' || settings.mode === 'depth') {
    rows.push(['strength', 'Strength', String(settings.strength)]);
  }
  if (settings.priorStrength !== undefined) {
    rows.push(['priorStrength', 'Image prompt', `the picture’s look, strength ${settings.priorStrength}`]);
  }
  return (
    <dl className="facts settings-list">
      {rows.map(([field, label, value]) => (
        <div key={field} className={other && other[field] !== settings[field] ? 'differs' : undefined}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}
