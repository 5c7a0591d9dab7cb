import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { sql } from 'drizzle-orm';
import { hashPassword } from '../lib/passwords.ts';
import type { Db } from './client.ts';
import { Col, rowsOf, selectRows } from './rows.ts';
import type { ExerciseTest } from './schema/exercises.ts';
import { courseMembers, courses, exercises, lessons, users } from './schema/index.ts';

export const DEMO = {
  instructor: { email: 'instructor@lab.local', password: 'instructor-demo-pass', name: 'Ada Instructor' },
  student: { email: 'student@lab.local', password: 'student-demo-pass', name: 'Sam Student' },
  courseTitle: 'Introduction to Programming (demo)',
} as const;

const courseIdRows = rowsOf(Type.Object({ course_id: Col.uuid }), 'demo course');
const userIdRows = rowsOf(Type.Object({ id: Col.uuid, email: Col.text }), 'demo users');

// Any constant: two processes seeding at once serialise on it, and the second finds the marker.
const SEED_LOCK = 7_240_102;

/** A call test as stored: its arguments and expected value are JSON text (db/schema/exercises.ts). */
export const storedCallTest = (
  name: string,
  argsJson: string,
  expectedJson: string,
  hidden: boolean,
): ExerciseTest => ({
  name,
  kind: 'call',
  argsJson,
  expectedJson,
  hidden,
  points: 1,
  tolerance: 0,
});
export const storedIoTest = (name: string, stdin: string, stdout: string, hidden: boolean): ExerciseTest => ({
  name,
  kind: 'io',
  stdin,
  stdout,
  hidden,
  points: 1,
});
const call = storedCallTest;
const io = storedIoTest;

interface DemoExercise {
  title: string;
  prompt: string;
  language: 'javascript' | 'python';
  entrypoint: string | null;
  starterCode: string;
  tests: ExerciseTest[];
}

const LESSONS: { title: string; body: string; exercises: DemoExercise[] }[] = [
  {
    title: 'Functions in JavaScript',
    body: '# Functions\n\nA function takes arguments and **returns** a value:\n\n```js\nfunction double(x) {\n  return 2 * x;\n}\n```\n',
    exercises: [
      {
        title: 'Sum two numbers',
        prompt: 'Write `add(a, b)` that returns the sum of `a` and `b`.',
        language: 'javascript',
        entrypoint: 'add',
        starterCode: 'function add(a, b) {\n  // your code here\n}\n',
        tests: [
          call('small numbers', '[1,2]', '3', false),
          call('negatives', '[-4,1]', '-3', false),
          call('large numbers', '[1e9,1e9]', '2e9', true),
        ],
      },
      {
        title: 'Echo the input in upper case',
        prompt: 'Read every line of the input and print it in upper case.',
        language: 'javascript',
        entrypoint: null,
        starterCode: 'let line;\nwhile ((line = readLine()) !== null) {\n  console.log(line);\n}\n',
        tests: [io('one line', 'hello\n', 'HELLO\n', false), io('two lines', 'a\nb c\n', 'A\nB C\n', true)],
      },
    ],
  },
  {
    title: 'Python basics',
    body: '# Python\n\nIndentation is syntax. `def` defines a function; `input()` reads a line.\n',
    exercises: [
      {
        title: 'Factorial',
        prompt: 'Write `factorial(n)` returning n! for n ≥ 0.',
        language: 'python',
        entrypoint: 'factorial',
        starterCode: 'def factorial(n):\n    pass\n',
        tests: [
          call('zero', '[0]', '1', false),
          call('five', '[5]', '120', false),
          call('twenty', '[20]', '2432902008176640000', true),
        ],
      },
      {
        title: 'Greeting',
        prompt: 'Read a name from the input and print `Hello, <name>!`.',
        language: 'python',
        entrypoint: null,
        starterCode: 'name = input()\nprint(name)\n',
        tests: [io('Ada', 'Ada\n', 'Hello, Ada!\n', false), io('Grace', 'Grace\n', 'Hello, Grace!\n', true)],
      },
    ],
  },
  {
    title: 'What comes next',
    body: '# Loops and lists\n\nNext week: loops, lists and dictionaries. Read ahead!\n',
    exercises: [],
  },
];

export interface SeedResult {
  created: boolean;
  courseId: string;
}

/**
 * The demo course, seeded once: idempotent by the demo instructor's email, all in one transaction, so
 * a crash half-way leaves nothing and several processes seeding at once create it once.
 */
export async function seedDemo(db: Db): Promise<SeedResult> {
  // Hash before the transaction: argon2 takes ~14 ms of CPU each and should not hold a connection idle.
  const [instructorHash, studentHash] = await Promise.all([
    hashPassword(DEMO.instructor.password),
    hashPassword(DEMO.student.password),
  ]);
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${SEED_LOCK})`);
    const [existing] = await selectRows(
      tx,
      courseIdRows,
      sql`
      select m.course_id from users u join course_members m on m.user_id = u.id
       where lower(u.email) = lower(${DEMO.instructor.email}) and m.role = 'instructor'
       order by m.joined_at limit 1`,
    );
    if (existing) return { created: false, courseId: existing.course_id };

    // An account that already has a demo email (registered by hand) is reused, not duplicated.
    await tx
      .insert(users)
      .values([
        { email: DEMO.instructor.email, name: DEMO.instructor.name, passwordHash: instructorHash },
        { email: DEMO.student.email, name: DEMO.student.name, passwordHash: studentHash },
      ])
      .onConflictDoNothing();
    const ids = await selectRows(
      tx,
      userIdRows,
      sql`select id, lower(email) as email from users
           where lower(email) in (${DEMO.instructor.email}, ${DEMO.student.email})`,
    );
    const idOf = (email: string) => ids.find((r) => r.email === email)!.id;
    const [course] = await tx
      .insert(courses)
      .values({
        title: DEMO.courseTitle,
        description: 'A demo course with JavaScript and Python exercises, seeded by `lab seed`.',
        // No dash: codes are compared after normaliseJoinCode, which drops dashes and spaces.
        joinCode: `DEMO${randomBytes(4).toString('hex').toUpperCase()}`,
      })
      .returning({ id: courses.id });
    const courseId = course!.id;
    await tx.insert(courseMembers).values([
      { courseId, userId: idOf(DEMO.instructor.email), role: 'instructor' },
      { courseId, userId: idOf(DEMO.student.email), role: 'student' },
    ]);
    const lessonRows = await tx
      .insert(lessons)
      .values(LESSONS.map((l, position) => ({ courseId, title: l.title, body: l.body, position })))
      .returning({ id: lessons.id, position: lessons.position });
    const exerciseRows = LESSONS.flatMap((l, position) =>
      l.exercises.map((e) => ({
        courseId,
        lessonId: lessonRows.find((r) => r.position === position)!.id,
        ...e,
        maxScore: 10,
        limits: { timeMs: 2000, memoryMb: 64 },
      })),
    );
    await tx.insert(exercises).values(exerciseRows);
    return { created: true, courseId };
  });
}
