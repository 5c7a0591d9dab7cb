import { type ReactNode, useState } from 'react';
import { Markdown } from './markdown.tsx';
import { TextArea } from './ui.tsx';

type Tab = 'write' | 'preview';

const TABS: { tab: Tab; label: string }[] = [
  { tab: 'write', label: 'Write' },
  { tab: 'preview', label: 'Preview' },
];

/**
 * A Markdown textarea with "Write" / "Preview" tabs. The preview renders through the same sanitising
 * Markdown component that readers see. `idPrefix` keeps the tab and panel ids unique on the page.
 */
export function MarkdownField({
  label,
  tabsLabel,
  value,
  onChange,
  error,
  hint,
  rows,
  idPrefix,
}: {
  /** The textarea's label. */
  label: string;
  /** The tab list's accessible name. */
  tabsLabel: string;
  value: string;
  onChange: (value: string) => void;
  error?: string;
  hint?: ReactNode;
  rows: number;
  idPrefix: string;
}) {
  const [tab, setTab] = useState<Tab>('write');
  const tabId = (t: Tab) => `${idPrefix}tab-${t}`;
  const panelId = (t: Tab) => `${idPrefix}panel-${t}`;
  return (
    <>
      <div className="tabs" role="tablist" aria-label={tabsLabel}>
        {TABS.map((t) => (
          <button
            key={t.tab}
            type="button"
            role="tab"
            id={tabId(t.tab)}
            aria-selected={tab === t.tab}
            aria-controls={panelId(t.tab)}
            onClick={() => setTab(t.tab)}
          >
            {t.label}
          </button>
        ))}
      </div>
      <div id={panelId('write')} role="tabpanel" aria-labelledby={tabId('write')} hidden={tab !== 'write'}>
        <TextArea
          label={label}
          className="mono"
          rows={rows}
          value={value}
          onChange={(e) => onChange(e.target.value)}
          error={error}
          hint={hint}
        />
      </div>
      <div
        id={panelId('preview')}
        role="tabpanel"
        aria-labelledby={tabId('preview')}
        hidden={tab !== 'preview'}
        className="preview"
      >
        {value.trim() ? <Markdown source={value} /> : <p className="empty">Nothing to preview yet.</p>}
      </div>
    </>
  );
}
