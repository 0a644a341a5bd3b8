import { type ReactNode, useEffect, useId, useRef } from 'react';

interface Props {
  readonly open: boolean;
  readonly onClose: () => void;
  readonly children: ReactNode;
}

/**
 * The device report and the full model manager, in a native modal dialog opened from the status
 * line: focus moves in, Escape closes, focus returns to the opener. It stays mounted while closed,
 * so what it reports (the self-test) is in the page from the start.
 */
export function ModelsDialog({ open, onClose, children }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  const headingId = useId();
  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (open && !element.open) element.showModal();
    if (!open && element.open) element.close();
  }, [open]);
  return (
    <dialog
      ref={dialog}
      className="modal models-dialog"
      aria-labelledby={headingId}
      data-testid="models-dialog"
      onClose={onClose}
    >
      <div className="modal-header">
        <h2 id={headingId}>Device and models</h2>
        <button type="button" className="secondary" onClick={onClose}>
          Close
        </button>
      </div>
      <div className="models-dialog-body">{children}</div>
    </dialog>
  );
}
