import {
  createScanner,
  findNodeAtLocation,
  type Node,
  type ParseError,
  parseTree,
  SyntaxKind,
} from 'jsonc-parser';

/*
 * JSON kept as the text it was written in. JavaScript's JSON.parse rounds integers past 2^53 and
 * moves integer-like object keys first, so a test's arguments and expected value would reach a
 * Python program or a comparison changed. Instead they are taken out of the request body as text,
 * stored as text, handed to the sandbox as text and compared here on the parsed tree, where a
 * number is still its literal.
 */

/** A JSON value already serialised; `stringifyWithRaw` embeds it as it is. */
export class RawJson {
  constructor(readonly text: string) {}
  toJSON(): unknown {
    return JSON.parse(this.text);
  }
}

/** The same JSON without insignificant whitespace; strings and number literals untouched. */
export function minifyJson(text: string): string {
  const scanner = createScanner(text, true);
  let out = '';
  for (let token = scanner.scan(); token !== SyntaxKind.EOF; token = scanner.scan())
    out += text.slice(scanner.getTokenOffset(), scanner.getTokenOffset() + scanner.getTokenLength());
  return out;
}

/** Parses strict JSON into a tree whose nodes keep their place in `text`; throws when it is not JSON. */
export function parseExact(text: string): Node {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { disallowComments: true, allowTrailingComma: false });
  if (!root || errors.length > 0) throw new SyntaxError('not valid JSON');
  return root;
}

/** The minified text of the value at `path` in a JSON document, or undefined when there is none. */
export function rawValueAt(root: Node, text: string, path: Array<string | number>): string | undefined {
  const node = findNodeAtLocation(root, path);
  return node ? minifyJson(text.slice(node.offset, node.offset + node.length)) : undefined;
}

/** The path (dotted) of the first object key written twice, or null. JSON.parse keeps the last silently. */
export function duplicateKey(root: Node, at = ''): string | null {
  if (root.type === 'object') {
    const seen = new Set<string>();
    for (const prop of root.children ?? []) {
      const key = String(prop.children![0]!.value);
      const path = at ? `${at}.${key}` : key;
      if (seen.has(key)) return path;
      seen.add(key);
      const inner = duplicateKey(prop.children![1]!, path);
      if (inner) return inner;
    }
  } else if (root.type === 'array') {
    for (const [i, child] of (root.children ?? []).entries()) {
      const inner = duplicateKey(child, at ? `${at}.${i}` : String(i));
      if (inner) return inner;
    }
  }
  return null;
}

const INTEGER = /^-?\d+$/;

export interface Equality {
  /** Numbers compare equal within tolerance × max(1, |expected|); 0 = exactly. */
  tolerance: number;
  /**
   * 'exact': two integer literals compare as integers of any size (Python's int); 'double': every
   * number is a double, as in JavaScript, where 2**64 + 1 cannot even be written.
   */
  integers: 'exact' | 'double';
}

/**
 * Deep equality of two JSON values as written: numbers by value (see Equality); object key order is
 * ignored, array order is not; true ≠ 1, null ≠ missing.
 */
export function exactEqual(
  expected: Node,
  eText: string,
  received: Node,
  rText: string,
  eq: Equality,
): boolean {
  if (expected.type !== received.type) return false;
  switch (expected.type) {
    case 'number': {
      const a = eText.slice(expected.offset, expected.offset + expected.length);
      const b = rText.slice(received.offset, received.offset + received.length);
      const { tolerance } = eq;
      if (tolerance === 0 && eq.integers === 'exact' && INTEGER.test(a) && INTEGER.test(b))
        return BigInt(a) === BigInt(b);
      const e = Number(a);
      const r = Number(b);
      if (tolerance === 0) return e === r;
      return Math.abs(r - e) <= tolerance * Math.max(1, Math.abs(e));
    }
    case 'array': {
      const es = expected.children ?? [];
      const rs = received.children ?? [];
      return es.length === rs.length && es.every((e, i) => exactEqual(e, eText, rs[i]!, rText, eq));
    }
    case 'object': {
      const props = (n: Node) =>
        new Map((n.children ?? []).map((p) => [String(p.children![0]!.value), p.children![1]!]));
      const es = props(expected);
      const rs = props(received);
      if (es.size !== rs.size) return false;
      for (const [key, e] of es) {
        const r = rs.get(key);
        if (!r || !exactEqual(e, eText, r, rText, eq)) return false;
      }
      return true;
    }
    default:
      return expected.value === received.value;
  }
}

/**
 * JSON.stringify, with RawJson values written as their text: how a response carries a test's
 * arguments and expected value exactly as the instructor wrote them.
 */
export function stringifyWithRaw(value: unknown): string {
  const raws: string[] = [];
  const marker = `\u0000raw${Math.random().toString(36).slice(2)}:`;
  const text = JSON.stringify(value, function (this: unknown, _key, v: unknown) {
    const own = (this as Record<string, unknown>)[_key];
    if (own instanceof RawJson) {
      raws.push(own.text);
      return `${marker}${raws.length - 1}`;
    }
    return v;
  });
  if (raws.length === 0) return text;
  const escaped = JSON.stringify(marker).slice(1, -1);
  return text.replace(
    new RegExp(`"${escapeRegExp(escaped)}(\\d+)"`, 'g'),
    (_, i: string) => raws[Number(i)]!,
  );
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
