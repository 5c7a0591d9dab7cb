import hljs from 'highlight.js/lib/core';
import javascript from 'highlight.js/lib/languages/javascript';
import python from 'highlight.js/lib/languages/python';
import { useMemo } from 'react';
import 'highlight.js/styles/a11y-light.css';

hljs.registerLanguage('javascript', javascript);
hljs.registerLanguage('python', python);

/**
 * Highlighted lines of a highlight.js result, each line's open spans closed at its end and reopened
 * on the next, so every line can be its own row (line numbers, diff marks).
 */
export function highlightLines(code: string, language: 'javascript' | 'python'): string[] {
  const html = hljs.highlight(code, { language, ignoreIllegals: true }).value;
  const out: string[] = [];
  let open: string[] = [];
  for (const line of html.split('\n')) {
    let text = open.join('') + line;
    const stack = [...open];
    for (const m of line.matchAll(/<span[^>]*>|<\/span>/g)) {
      if (m[0] === '</span>') stack.pop();
      else stack.push(m[0]);
    }
    text += '</span>'.repeat(stack.length);
    open = stack;
    out.push(text);
  }
  return out;
}

/** Read-only code with line numbers and syntax colours (a submission's code). */
export function CodeView({
  code,
  language,
  label,
}: {
  code: string;
  language: 'javascript' | 'python';
  label: string;
}) {
  const lines = useMemo(() => highlightLines(code, language), [code, language]);
  return (
    <figure className="code-view">
      <figcaption className="visually-hidden">{label}</figcaption>
      {/* A scrollable region must be reachable by keyboard (axe: scrollable-region-focusable). */}
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: scrollable code must be reachable by keyboard */}
      <pre className="hljs" tabIndex={0}>
        <code>
          {lines.map((html, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: lines of a fixed text
            <span key={i} className="code-line">
              <span className="line-no" aria-hidden="true">
                {i + 1}
              </span>
              {/* biome-ignore lint/security/noDangerouslySetInnerHtml: highlight.js output is escaped text in spans */}
              <span className="line-text" dangerouslySetInnerHTML={{ __html: html || ' ' }} />
              {'\n'}
            </span>
          ))}
        </code>
      </pre>
    </figure>
  );
}

export type DiffLine = { kind: 'same' | 'add' | 'del'; text: string; a?: number; b?: number };

/** A line diff by longest common subsequence (submissions are ≤ 100 kB; beyond 4,000 lines, unified by order). */
export function diffLines(a: string, b: string): DiffLine[] {
  const x = a.split('\n');
  const y = b.split('\n');
  const n = x.length;
  const m = y.length;
  if (n * m > 16_000_000) {
    return [
      ...x.map((text, i) => ({ kind: 'del' as const, text, a: i + 1 })),
      ...y.map((text, j) => ({ kind: 'add' as const, text, b: j + 1 })),
    ];
  }
  // lcs[i][j] = LCS length of x[i..] and y[j..], in one flat array.
  const w = m + 1;
  const lcs = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i * w + j] =
        x[i] === y[j] ? lcs[(i + 1) * w + j + 1]! + 1 : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      out.push({ kind: 'same', text: x[i]!, a: i + 1, b: j + 1 });
      i++;
      j++;
    } else if (lcs[(i + 1) * w + j]! >= lcs[i * w + j + 1]!) {
      out.push({ kind: 'del', text: x[i]!, a: i + 1 });
      i++;
    } else {
      out.push({ kind: 'add', text: y[j]!, b: j + 1 });
      j++;
    }
  }
  while (i < n) out.push({ kind: 'del', text: x[i]!, a: ++i });
  while (j < m) out.push({ kind: 'add', text: y[j]!, b: ++j });
  return out;
}

const MARK = { same: ' ', add: '+', del: '−' } as const;
const SAY = { same: '', add: 'added: ', del: 'removed: ' } as const;

/** Two versions of code, line by line: removed lines (older) and added lines (newer) marked. */
export function DiffView({ before, after, label }: { before: string; after: string; label: string }) {
  const lines = useMemo(() => diffLines(before, after), [before, after]);
  const added = lines.filter((l) => l.kind === 'add').length;
  const removed = lines.filter((l) => l.kind === 'del').length;
  return (
    <figure className="diff-view">
      <figcaption>
        {label}: <span className="diff-add-count">{added} added</span>,{' '}
        <span className="diff-del-count">{removed} removed</span>
      </figcaption>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: scrollable code must be reachable by keyboard */}
      <pre tabIndex={0}>
        <code>
          {lines.map((l, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: lines of a fixed diff
            <span key={i} className={`code-line diff-${l.kind}`}>
              <span className="line-no" aria-hidden="true">
                {l.a ?? ''}
              </span>
              <span className="line-no" aria-hidden="true">
                {l.b ?? ''}
              </span>
              <span className="diff-mark" aria-hidden="true">
                {MARK[l.kind]}
              </span>
              {SAY[l.kind] && <span className="visually-hidden">{SAY[l.kind]}</span>}
              <span className="line-text">{l.text || ' '}</span>
              {'\n'}
            </span>
          ))}
        </code>
      </pre>
    </figure>
  );
}
