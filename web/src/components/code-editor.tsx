import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import {
  bracketMatching,
  defaultHighlightStyle,
  HighlightStyle,
  indentOnInput,
  indentUnit,
  syntaxHighlighting,
} from '@codemirror/language';
import { Compartment, EditorState, type Extension } from '@codemirror/state';
import {
  drawSelection,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from '@codemirror/view';
import { tags } from '@lezer/highlight';

// What a student needs to write a function, without autocomplete, search or lint panels (half the size
// of codemirror's basicSetup).
const essentials = [
  lineNumbers(),
  highlightActiveLineGutter(),
  history(),
  drawSelection(),
  indentOnInput(),
  bracketMatching(),
  highlightActiveLine(),
  keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
];

import { useEffect, useId, useRef } from 'react';

// The editor follows the system's colour scheme, as the page does (styles.css), and switches live.
// Light: CodeMirror's own token colours. Dark: the page's dark palette, every token colour at least
// 7:1 against the background (WCAG AAA for text; axe checks it in the browser tests).
const light = [
  EditorView.theme({ '&': { backgroundColor: '#ffffff', color: '#1a1d23' } }),
  syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
];
const dark = [
  EditorView.theme(
    {
      '&': { backgroundColor: '#0b1016', color: '#e6e9ee' },
      '.cm-content': { caretColor: '#e6e9ee' },
      '.cm-cursor, .cm-dropCursor': { borderLeftColor: '#e6e9ee' },
      '&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground, .cm-content ::selection':
        { backgroundColor: '#2b3a52' },
      '.cm-gutters': { backgroundColor: '#111821', color: '#a7b0bd', border: 'none' },
      '.cm-activeLine': { backgroundColor: '#ffffff0a' },
      '.cm-activeLineGutter': { backgroundColor: '#ffffff12' },
      '&.cm-focused .cm-matchingBracket': { backgroundColor: '#2b3a52', outline: '1px solid #8ab4ff' },
    },
    { dark: true },
  ),
  syntaxHighlighting(
    HighlightStyle.define([
      { tag: tags.keyword, color: '#c9a0ff' },
      { tag: [tags.string, tags.special(tags.string), tags.regexp], color: '#a5e3a0' },
      { tag: tags.comment, color: '#a7b0bd', fontStyle: 'italic' },
      { tag: [tags.number, tags.bool, tags.null, tags.atom], color: '#f5b97a' },
      { tag: [tags.function(tags.variableName), tags.function(tags.propertyName)], color: '#8ab4ff' },
      { tag: [tags.typeName, tags.className], color: '#7fd4e8' },
      { tag: tags.invalid, color: '#fca5a5' },
    ]),
  ),
];
const darkScheme = () => window.matchMedia?.('(prefers-color-scheme: dark)');

export type EditorLanguage = 'javascript' | 'python';

// Each language's parser is its own chunk, fetched when an editor in that language first appears.
// Python is indented by 4 spaces (PEP 8), JavaScript by 2.
const languageOf = (l: EditorLanguage): Promise<Extension> =>
  l === 'python'
    ? import('@codemirror/lang-python').then((m) => [m.python(), indentUnit.of('    ')])
    : import('@codemirror/lang-javascript').then((m) => [m.javascript(), indentUnit.of('  ')]);

const indentOf = (l: EditorLanguage) => indentUnit.of(l === 'python' ? '    ' : '  ');

/** The CSP nonce the server put in index.html, so CodeMirror's <style> element is allowed. */
const nonce = document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content ?? '';

export interface CodeEditorProps {
  label: string;
  value: string;
  onChange: (value: string) => void;
  language: EditorLanguage;
  minHeight?: string;
  describedBy?: string;
}

/**
 * CodeMirror 6 as a controlled-ish React component: the editor owns its state while typing; an outside
 * `value` change (reset to starter code, a loaded draft) replaces the document.
 */
export function CodeEditor({
  label,
  value,
  onChange,
  language,
  minHeight = '12rem',
  describedBy,
}: CodeEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const lang = useRef(new Compartment());
  const scheme = useRef(new Compartment());
  const onChangeRef = useRef(onChange);
  onChangeRef.current = onChange;
  const labelId = useId();
  const hintId = useId();

  // biome-ignore lint/correctness/useExhaustiveDependencies: created once; value/language sync below
  useEffect(() => {
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: value,
        extensions: [
          essentials,
          lang.current.of(indentOf(language)),
          scheme.current.of(darkScheme()?.matches ? dark : light),
          EditorView.cspNonce.of(nonce),
          // Long lines wrap: no sideways scrolling on a phone (a scrolling box the keyboard cannot reach).
          EditorView.lineWrapping,
          EditorView.contentAttributes.of({
            'aria-labelledby': labelId,
            'aria-describedby': [hintId, describedBy].filter(Boolean).join(' '),
            'aria-multiline': 'true',
          }),
          EditorView.theme({ '&': { minHeight }, '.cm-scroller': { minHeight } }),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) onChangeRef.current(u.state.doc.toString());
          }),
        ],
      }),
    });
    view.current = v;
    const query = darkScheme();
    const follow = (e: MediaQueryListEvent) =>
      v.dispatch({ effects: scheme.current.reconfigure(e.matches ? dark : light) });
    query?.addEventListener('change', follow);
    return () => {
      query?.removeEventListener('change', follow);
      v.destroy();
    };
  }, []);

  useEffect(() => {
    const v = view.current;
    if (v && v.state.doc.toString() !== value) {
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: value } });
    }
  }, [value]);

  useEffect(() => {
    let current = true;
    languageOf(language).then(
      (ext) => current && view.current?.dispatch({ effects: lang.current.reconfigure(ext) }),
      // Offline: the editor works as plain text, still with the language's indentation.
      () => current && view.current?.dispatch({ effects: lang.current.reconfigure(indentOf(language)) }),
    );
    return () => {
      current = false;
    };
  }, [language]);

  return (
    <div className="code-editor">
      <span className="label" id={labelId}>
        {label}
      </span>
      <div ref={host} className="cm-host" />
      <small className="hint" id={hintId}>
        Tab indents; press Esc then Tab to move on.
      </small>
    </div>
  );
}

export default CodeEditor;
