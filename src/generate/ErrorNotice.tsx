import type { ErrorCode } from '../../workers/errors';
import { adviceForError, type UiErrorCode } from './error-advice';

interface Props {
  readonly code: ErrorCode | UiErrorCode;
  /** The specific message (from the worker or the storage); shown under the advice. */
  readonly message?: string;
}

/** A failure explained for people: what happened, what to do, then the technical detail. */
export function ErrorNotice({ code, message }: Props) {
  const advice = adviceForError(code);
  return (
    <div className="notice error" role="alert" data-testid="error-notice" data-code={code}>
      <strong>{advice.title}</strong>
      <p>{advice.advice}</p>
      {message && message !== advice.advice && (
        <p className="detail">
          <code>{code}</code>: {message}
        </p>
      )}
    </div>
  );
}
