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

/** Turns batches of students into text: the document's opening comes with the first batch. */
export interface GradebookRenderer {
  opening(): string;
  students(rows: readonly GradebookStudent[]): string;
}

/** One student's figures by column, reused from row to row so a batch allocates only its text. */
class Figures {
  readonly best: string[];
  readonly late: boolean[];
  readonly attempts: string[];
  total = 0;

  constructor(readonly columns: number) {
    this.best = new Array<string>(columns);
    this.late = new Array<boolean>(columns);
    this.attempts = new Array<string>(columns);
  }

  /** Loads a student's cells; the total is summed in column order, as the JSON gradebook always added. */
  load(cells: string | null): void {
    this.best.fill('');
    this.late.fill(false);
    this.attempts.fill('0');
    if (cells !== null) {
      let at = 0;
      while (at < cells.length) {
        const c1 = cells.indexOf(',', at);
        const c2 = cells.indexOf(',', c1 + 1);
        const c3 = cells.indexOf(',', c2 + 1);
        let end = cells.indexOf(';', c3 + 1);
        if (end < 0) end = cells.length;
        const i = Number(cells.slice(at, c1)) - 1;
        // Columns and cells come from one snapshot (a repeatable-read transaction): i is a column.
        if (i >= 0 && i < this.columns) {
          this.best[i] = cells.slice(c1 + 1, c2);
          this.late[i] = c3 > c2 + 1;
          this.attempts[i] = cells.slice(c3 + 1, end);
        }
        at = end + 1;
      }
    }
    let total = 0;
    for (const best of this.best) if (best !== '') total += Number(best);
    this.total = round2(total);
  }
}

/** A cell as spreadsheet-safe text: a leading apostrophe on formula-like text (CSV injection). */
export const defuse = (cell: string) => (/^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell);

/** An RFC 4180 cell: quoted, inner quotes doubled, when it holds , " CR or LF. */
const quoted = (cell: string) => (/[,"\r\n]/.test(cell) ? `"${cell.replaceAll('"', '""')}"` : cell);

const textCell = (cell: string) => quoted(defuse(cell));

/**
 * The CSV gradebook: `name,email`, for each exercise its title and `<title> (late)` (v1.1), `total`; one
 * line per student, `late` or nothing in each late column.
 */
export function csvRenderer(columns: readonly GradebookColumn[]): GradebookRenderer {
  const figures = new Figures(columns.length);
  return {
    opening: () =>
      `name,email${columns.map((c) => `,${textCell(c.title)},${textCell(`${c.title} (late)`)}`).join('')},total\n`,
    students(rows) {
      let text = '';
      for (const row of rows) {
        figures.load(row.cells);
        let line = `${textCell(row.name)},${textCell(row.email)}`;
        for (let i = 0; i < figures.columns; i++)
          line += `,${figures.best[i]},${figures.late[i] ? 'late' : ''}`;
        text += `${line},${figures.total}\n`;
      }
      return text;
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
  const keys = columns.map((c) => `"${c.id}":`);
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
    students(rows) {
      let text = '';
      for (const row of rows) {
        figures.load(row.cells);
        let scores = '';
        let late = '';
        let attempts = '';
        for (let i = 0; i < figures.columns; i++) {
          const sep = i === 0 ? '' : ',';
          const best = figures.best[i];
          scores += `${sep}${keys[i]}${best === '' ? 'null' : best}`;
          late += `${sep}${keys[i]}${figures.late[i]}`;
          attempts += `${sep}${keys[i]}${figures.attempts[i]}`;
        }
        text += `${first ? '' : ','}{"user":{"id":"${row.id}","name":${JSON.stringify(row.name)},"email":${JSON.stringify(
          row.email,
        )}},"scores":{${scores}},"late":{${late}},"attempts":{${attempts}},"total":${figures.total}}`;
        first = false;
      }
      return text;
    },
  };
}

export const GRADEBOOK_JSON_END = ']}';
