import { useRef } from 'react';
import { TAB_LABELS, TABS, type Tab } from './build-request';

interface Props {
  readonly tab: Tab;
  readonly onTab: (tab: Tab) => void;
  readonly idPrefix: string;
}

/** WAI-ARIA tabs: one tab stop, arrow keys move between modes, Home/End jump to the ends. */
export function ModeTabs({ tab, onTab, idPrefix }: Props) {
  const buttons = useRef<Partial<Record<Tab, HTMLButtonElement | null>>>({});
  const move = (to: Tab) => {
    onTab(to);
    buttons.current[to]?.focus();
  };
  return (
    <div
      className="mode-tabs"
      role="tablist"
      aria-label="Mode"
      onKeyDown={(event) => {
        const index = TABS.indexOf(tab);
        const last = TABS.length - 1;
        const target =
          event.key === 'ArrowRight'
            ? TABS[index === last ? 0 : index + 1]
            : event.key === 'ArrowLeft'
              ? TABS[index === 0 ? last : index - 1]
              : event.key === 'Home'
                ? TABS[0]
                : event.key === 'End'
                  ? TABS[last]
                  : undefined;
        if (target) {
          event.preventDefault();
          move(target);
        }
      }}
    >
      {TABS.map((mode) => (
        <button
          key={mode}
          ref={(element) => {
            buttons.current[mode] = element;
          }}
          type="button"
          role="tab"
          id={`${idPrefix}-tab-${mode}`}
          aria-selected={tab === mode}
          aria-controls={`${idPrefix}-panel`}
          tabIndex={tab === mode ? 0 : -1}
          onClick={() => onTab(mode)}
        >
          {TAB_LABELS[mode]}
        </button>
      ))}
    </div>
  );
}
