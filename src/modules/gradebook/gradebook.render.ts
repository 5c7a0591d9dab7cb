/** A score rounded to two decimals, as every total of the API is. */
export const round2 = (n: number) => Math.round(n * 100) / 100;

/** An exercise column of the gradebook, in course order; numbers and times as the API prints them. */
export interface GradebookColumn {
  id: string;
  title: string;
  /** The maximum score as float8 prints it in its shortest exact form (JavaScript's String(number)). */
  max_score: string;
  /** ISO 8601 UTC, as Date#toISOString writes it, or null. */
  published_at: string | null;
}

/**
 * A student of the gradebook and their figures, one cell per exercise they have any for, in a compact
 * text Postgres builds cheaply: `n,best,late,attempts` cells joined by `;`, where n is the column
 * (1-based, course order), best the best graded score as float8 prints it ('' = none), late `l` when there
 * is such a score and it was late ('' otherwise), attempts the attempts used.
 */
export interface GradebookStudent {
  id: string;
  name: string;
  email: string;
  cells: string | null;
}

/** Turns batches of students into bytes (UTF-8); the document's opening is written before the first. */
export interface GradebookRenderer {
  opening(): string;
  /** The students' text after `prefix` (the opening, with the first batch). */
  students(rows: readonly GradebookStudent[], prefix?: string): Buffer;
}

/**
 * A growing byte buffer that text is written into directly. The gradebook's text used to be built as
 * strings (a slice per figure, a template and a concatenation per cell): ~3 kB of short-lived objects
 * per student, ~15 MB per 5,000-student request, which made the API process's young-generation
 * collections — pauses for every other request on that instance — several times more frequent while a
 * big gradebook was being sent (docs/perf/isolation.md). Written here, a batch allocates its buffer and
 * little else.
 */
class ByteWriter {
  private buf: Buffer;
  length = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(Math.max(size, 1024));
  }

  private room(n: number) {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  /** Any text, as UTF-8. */
  text(s: string) {
    this.room(s.length * 3);
    this.length += this.buf.write(s, this.length, 'utf8');
  }

  /** Text known to be ASCII (figures, keys, punctuation), or its [from, to) part, without a slice. */
  ascii(s: string, from = 0, to = s.length) {
    this.room(to - from);
    const buf = this.buf;
    let n = this.length;
    for (let i = from; i < to; i++) buf[n++] = s.charCodeAt(i);
    this.length = n;
  }

  /** Bytes encoded beforehand (a key written for every student), copied in a loop: they are short. */
  bytes(b: Uint8Array) {
    this.room(b.length);
    const buf = this.buf;
    let n = this.length;
    for (let i = 0; i < b.length; i++) buf[n++] = b[i]!;
    this.length = n;
  }

  /**
   * The bytes written. A buffer mostly unused is copied down to size: a chunk may wait in the response
   * stream's read-ahead (up to 16 MB of them), and it should not hold memory it does not use.
   */
  take(): Buffer {
    const used = this.buf.subarray(0, this.length);
    return this.length * 2 < this.buf.length ? Buffer.from(used) : used;
  }
}

const CHAR_0 = 48;
const CHAR_9 = 57;
const CHAR_DOT = 46;
const CHAR_MINUS = 45;
const POWERS_OF_TEN = Array.from({ length: 16 }, (_, k) => 10 ** k);

/**
 * Number(s.slice(from, to)) without the slice for plain decimals of at most 15 digits: the digits as an
 * integer (exact below 2^53) divided by an exact power of ten is one correctly rounded operation, so
 * the result is the same double Number() gives. Anything else (exponents, longer figures) takes the slice.
 */
function decimalAt(s: string, from: number, to: number): number {
  let at = from;
  const negative = s.charCodeAt(at) === CHAR_MINUS;
  if (negative) at++;
  let digits = 0;
  let value = 0;
  let fraction = -1;
  for (; at < to; at++) {
    const c = s.charCodeAt(at);
    if (c >= CHAR_0 && c <= CHAR_9) {
      value = value * 10 + (c - CHAR_0);
      digits++;
      if (fraction >= 0) fraction++;
    } else if (c === CHAR_DOT && fraction < 0) fraction = 0;
    else return Number(s.slice(from, to));
  }
  if (digits === 0 || digits > 15) return Number(s.slice(from, to));
  const n = fraction > 0 ? value / POWERS_OF_TEN[fraction]! : value;
  return negative ? -n : n;
}

/**
 * One student's figures by column, as positions in the student's cells text (no copies), reused from
 * row to row.
 */
class Figures {
  /** The cells text the positions below point into. */
  cells = '';
  /** Per column: where the best score's text starts and ends (equal: none). */
  readonly bestFrom: Int32Array;
  readonly bestTo: Int32Array;
  readonly late: Uint8Array;
  /** Per column: where the attempts' text starts and ends (equal: none, i.e. 0). */
  readonly attemptsFrom: Int32Array;
  readonly attemptsTo: Int32Array;
  total = 0;

  constructor(readonly columns: number) {
    this.bestFrom = new Int32Array(columns);
    this.bestTo = new Int32Array(columns);
    this.late = new Uint8Array(columns);
    this.attemptsFrom = new Int32Array(columns);
    this.attemptsTo = new Int32Array(columns);
  }

  /** Loads a student's cells; the total is summed in column order, as the JSON gradebook always added. */
  load(cells: string | null): void {
    this.bestFrom.fill(0);
    this.bestTo.fill(0);
    this.late.fill(0);
    this.attemptsFrom.fill(0);
    this.attemptsTo.fill(0);
    this.cells = cells ?? '';
    if (cells !== null) {
      let at = 0;
      while (at < cells.length) {
        const c1 = cells.indexOf(',', at);
        const c2 = cells.indexOf(',', c1 + 1);
        const c3 = cells.indexOf(',', c2 + 1);
        let end = cells.indexOf(';', c3 + 1);
        if (end < 0) end = cells.length;
        const i = decimalAt(cells, at, c1) - 1;
        // Columns and cells come from one snapshot (a repeatable-read transaction): i is a column.
        if (i >= 0 && i < this.columns) {
          this.bestFrom[i] = c1 + 1;
          this.bestTo[i] = c2;
          this.late[i] = c3 > c2 + 1 ? 1 : 0;
          this.attemptsFrom[i] = c3 + 1;
          this.attemptsTo[i] = end;
        }
        at = end + 1;
      }
    }
    let total = 0;
    for (let i = 0; i < this.columns; i++)
      if (this.hasBest(i)) total += decimalAt(this.cells, this.bestFrom[i]!, this.bestTo[i]!);
    this.total = round2(total);
  }

  hasBest(i: number) {
    return this.bestTo[i]! > this.bestFrom[i]!;
  }

  writeBest(out: ByteWriter, i: number) {
    out.ascii(this.cells, this.bestFrom[i]!, this.bestTo[i]!);
  }

  writeAttempts(out: ByteWriter, i: number) {
    if (this.attemptsTo[i]! > this.attemptsFrom[i]!)
      out.ascii(this.cells, this.attemptsFrom[i]!, this.attemptsTo[i]!);
    else out.ascii('0');
  }
}

/** A cell as spreadsheet-safe text: a leading apostrophe on formula-like text (CSV injection). */
export const defuse = (cell: string) => (/^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell);

/** An RFC 4180 cell: quoted, inner quotes doubled, when it holds , " CR or LF. */
const quoted = (cell: string) => (/[,"\r\n]/.test(cell) ? `"${cell.replaceAll('"', '""')}"` : cell);

const textCell = (cell: string) => quoted(defuse(cell));

/**
 * A first guess at a batch's size in bytes, from a guess per student (names and emails of ~30
 * characters each, figures of a few); the writer grows past it when needed.
 */
const batchBytes = (rows: number, perStudent: number, prefix: string) =>
  prefix.length * 3 + rows * perStudent;

/**
 * The CSV gradebook: `name,email`, for each exercise its title and `<title> (late)` (v1.1), `total`; one
 * line per student, `late` or nothing in each late column.
 */
export function csvRenderer(columns: readonly GradebookColumn[]): GradebookRenderer {
  const figures = new Figures(columns.length);
  return {
    opening: () =>
      `name,email${columns.map((c) => `,${textCell(c.title)},${textCell(`${c.title} (late)`)}`).join('')},total\n`,
    students(rows, prefix = '') {
      const out = new ByteWriter(batchBytes(rows.length, 64 + figures.columns * 8, prefix));
      out.text(prefix);
      for (const row of rows) {
        figures.load(row.cells);
        out.text(textCell(row.name));
        out.ascii(',');
        out.text(textCell(row.email));
        for (let i = 0; i < figures.columns; i++) {
          out.ascii(',');
          figures.writeBest(out, i);
          out.ascii(figures.late[i] ? ',late' : ',');
        }
        out.ascii(`,${figures.total}\n`);
      }
      return out.take();
    },
  };
}

/**
 * The JSON gradebook (docs/api.md) as text, all but its closing `]}` (GRADEBOOK_JSON_END): every student
 * has every exercise's key in `scores` (null: none), `late` and `attempts`. Text goes through
 * JSON.stringify; ids are uuids, which need no escaping.
 */
export function jsonRenderer(columns: readonly GradebookColumn[]): GradebookRenderer {
  const figures = new Figures(columns.length);
  // Each key as written before a value: the first of an object, then after a comma.
  const keys = columns.map((c) => Buffer.from(`"${c.id}":`));
  const nextKeys = columns.map((c) => Buffer.from(`,"${c.id}":`));
  const key = (out: ByteWriter, i: number) => out.bytes(i === 0 ? keys[i]! : nextKeys[i]!);
  let first = true;
  return {
    opening: () =>
      `{"exercises":[${columns
        .map(
          (c) =>
            `{"id":"${c.id}","title":${JSON.stringify(c.title)},"maxScore":${c.max_score},"publishedAt":${
              c.published_at === null ? 'null' : `"${c.published_at}"`
            }}`,
        )
        .join(',')}],"rows":[`,
    students(rows, prefix = '') {
      // Three objects keyed by exercise id (~40 bytes a key) and a figure each.
      const out = new ByteWriter(batchBytes(rows.length, 160 + figures.columns * 135, prefix));
      out.text(prefix);
      for (const row of rows) {
        figures.load(row.cells);
        out.ascii(first ? '{"user":{"id":"' : ',{"user":{"id":"');
        first = false;
        out.ascii(row.id);
        out.ascii('","name":');
        out.text(JSON.stringify(row.name));
        out.ascii(',"email":');
        out.text(JSON.stringify(row.email));
        out.ascii('},"scores":{');
        for (let i = 0; i < figures.columns; i++) {
          key(out, i);
          if (figures.hasBest(i)) figures.writeBest(out, i);
          else out.ascii('null');
        }
        out.ascii('},"late":{');
        for (let i = 0; i < figures.columns; i++) {
          key(out, i);
          out.ascii(figures.late[i] ? 'true' : 'false');
        }
        out.ascii('},"attempts":{');
        for (let i = 0; i < figures.columns; i++) {
          key(out, i);
          figures.writeAttempts(out, i);
        }
        out.ascii(`},"total":${figures.total}}`);
      }
      return out.take();
    },
  };
}

export const GRADEBOOK_JSON_END = ']}';
