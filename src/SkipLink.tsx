/** The id of the prompt field (the first one in mix mode), the skip link's target. */
export const PROMPT_FIELD_ID = 'prompt';

/**
 * "Skip to prompt": the first Tab stop, past the header and the status line. It moves focus itself
 * (not only the scroll position), so the next key typed goes into the prompt.
 */
export function SkipLink() {
  return (
    <a
      className="skip-link"
      href={`#${PROMPT_FIELD_ID}`}
      onClick={(event) => {
        const target =
          document.getElementById(PROMPT_FIELD_ID) ??
          document.querySelector<HTMLElement>('.generate-form textarea, .generate-form input');
        if (!target) return;
        event.preventDefault();
        target.focus();
        target.scrollIntoView({ block: 'center' });
      }}
    >
      Skip to prompt
    </a>
  );
}
