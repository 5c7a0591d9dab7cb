import { describe, expect, it } from 'vitest';
import {
  csvRenderer,
  defuse,
  GRADEBOOK_JSON_END,
  type GradebookColumn,
  jsonRenderer,
} from './gradebook.render.ts';

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const columns: GradebookColumn[] = [
  { id: A, title: 'Sum, "two"', max_score: '10', published_at: '2026-01-02T03:04:05.006Z' },
  { id: B, title: '=HYPERLINK()', max_score: '2.5', published_at: null },
];
const ann = { id: '00000000-0000-4000-8000-000000000001', name: 'Ann "A"\n', email: 'ann@x.org' };
const bob = { id: '00000000-0000-4000-8000-000000000002', name: '+Bob', email: 'bob@x.org' };

describe('gradebook renderers', () => {
  it('write the CSV: quoted and defused text, a late column per exercise, totals summed in column order', () => {
    const csv = csvRenderer(columns);
    const text =
      csv.opening() +
      csv.students([{ ...ann, cells: '2,0.1,l,3;1,0.2,,1' }]) +
      csv.students([{ ...bob, cells: null }]);
    expect(text).toBe(
      [
        `name,email,"Sum, ""two""","Sum, ""two"" (late)",'=HYPERLINK(),'=HYPERLINK() (late),total`,
        `"Ann ""A""\n",ann@x.org,0.2,,0.1,late,0.3`,
        `'+Bob,bob@x.org,,,,,0`,
        '',
      ].join('\n'),
    );
  });

  it('write the JSON: every exercise key for every student, null, false and 0 where none', () => {
    const json = jsonRenderer(columns);
    const text =
      json.opening() +
      json.students([{ ...ann, cells: '2,2.5,l,4' }]) +
      json.students([]) +
      json.students([{ ...bob, cells: `1,,,2` }]) +
      GRADEBOOK_JSON_END;
    expect(JSON.parse(text)).toEqual({
      exercises: [
        { id: A, title: 'Sum, "two"', maxScore: 10, publishedAt: '2026-01-02T03:04:05.006Z' },
        { id: B, title: '=HYPERLINK()', maxScore: 2.5, publishedAt: null },
      ],
      rows: [
        {
          user: { id: ann.id, name: ann.name, email: ann.email },
          scores: { [A]: null, [B]: 2.5 },
          late: { [A]: false, [B]: true },
          attempts: { [A]: 0, [B]: 4 },
          total: 2.5,
        },
        {
          user: { id: bob.id, name: bob.name, email: bob.email },
          scores: { [A]: null, [B]: null },
          late: { [A]: false, [B]: false },
          attempts: { [A]: 2, [B]: 0 },
          total: 0,
        },
      ],
    });
  });

  it('a course without exercises or students is still a whole document', () => {
    const json = jsonRenderer([]);
    expect(JSON.parse(json.opening() + json.students([]) + GRADEBOOK_JSON_END)).toEqual({
      exercises: [],
      rows: [],
    });
    const csv = csvRenderer([]);
    expect(csv.opening() + csv.students([{ ...bob, cells: null }])).toBe(
      "name,email,total\n'+Bob,bob@x.org,0\n",
    );
  });

  it('ignores a cell whose column is not in the gradebook', () => {
    const csv = csvRenderer(columns.slice(0, 1));
    expect(csv.students([{ ...bob, cells: '2,9,,1;1,1,,1;0,5,,1' }]).toString()).toBe(
      "'+Bob,bob@x.org,1,,1\n",
    );
  });

  it('adds every form of figure float8 prints exactly as Number() reads it', () => {
    // Plain decimals are read without a copy (decimalAt); the others through Number().
    const figures = [
      '0.1',
      '0.2',
      '-0.25',
      '-0',
      '7',
      '1e-05',
      '1.5e+20',
      '1234567890.12345',
      '0.1234567890123456789',
    ];
    const many = figures.map((_, i) => ({
      id: `e${i}`,
      title: `E${i}`,
      max_score: '10',
      published_at: null,
    }));
    const cells = figures.map((f, i) => `${i + 1},${f},,1`).join(';');
    let expected = 0;
    for (const f of figures) expected += Number(f);
    const line = csvRenderer(many)
      .students([{ ...bob, cells }])
      .toString();
    expect(line.trimEnd().split(',').at(-1)).toBe(String(Math.round(expected * 100) / 100));
    expect(line).toContain(',1e-05,,');
    const json = JSON.parse(
      `{"rows":[${jsonRenderer(many)
        .students([{ ...bob, cells }])
        .toString()}]}`,
    );
    expect(Object.values(json.rows[0].scores)).toEqual(figures.map(Number));
  });

  it('writes any text as UTF-8 and grows past its first guess at a batch size', () => {
    const long = { ...ann, name: `Zoë 🎓 ${'ü'.repeat(5000)}`, email: 'zoe@x.org' };
    const csv = csvRenderer(columns)
      .students([{ ...long, cells: '1,3,,1' }])
      .toString('utf8');
    expect(csv).toBe(`Zoë 🎓 ${'ü'.repeat(5000)},zoe@x.org,3,,,,3\n`);
    const json = jsonRenderer(columns);
    const rows = Array.from({ length: 300 }, () => ({ ...long, cells: '2,1,l,2' }));
    const doc = JSON.parse(json.opening() + json.students(rows).toString('utf8') + GRADEBOOK_JSON_END);
    expect(doc.rows).toHaveLength(300);
    expect(doc.rows[299].user.name).toBe(long.name);
    expect(doc.rows[299]).toMatchObject({
      late: { [A]: false, [B]: true },
      attempts: { [A]: 0, [B]: 2 },
      total: 1,
    });
  });

  it('defuses formula-like text only', () => {
    for (const lead of ['=', '+', '-', '@', '\t', '\r']) expect(defuse(`${lead}x`)).toBe(`'${lead}x`);
    expect(defuse('x=1')).toBe('x=1');
    expect(defuse('')).toBe('');
  });
});
