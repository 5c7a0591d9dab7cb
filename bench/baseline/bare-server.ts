// The Node ceiling for GET /api/v1/lessons/:id: node:http + pg running the lesson read as one statement
// (BARE_STATEMENTS=2: a caller lookup, then Lab's lesson statement; BARE_CALLER_CACHE=1: the caller kept
// in a Map after its first lookup, then Lab's lesson statement — exactly Lab's work with the cheapest
// cache there is), with no framework, no validation and no error shaping; every mode answers with the
// body and headers Lab's response carries (content type and length). Started by the
// bench as its own process so its CPU is measured the same way as a Lab instance's. GET /config tells
// the bench how it runs (pool size, statements), so the report states what ran, not what was asked.
import { createHash } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';
import { bareStatements, CALLER_BY_TOKEN, LESSON_PAGE_CACHED_CALLER, LESSON_READ_ONE } from './sql.ts';

const statements = bareStatements();
const callers = process.env.BARE_CALLER_CACHE === '1' ? new Map<string, { id: string }>() : null;

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.POOL_MAX ?? 4),
  application_name: 'lab:bench-bare',
});

const server = http.createServer(async (req, res) => {
  try {
    if (req.url === '/readyz') {
      res.writeHead(200).end('ok');
      return;
    }
    if (req.url === '/config') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ poolMax: pool.options.max, statements }));
      return;
    }
    const m = /^\/api\/v1\/lessons\/([0-9a-f-]{36})$/.exec(req.url ?? '');
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!m || !token) {
      res.writeHead(404).end();
      return;
    }
    const hash = createHash('sha256').update(token).digest('hex');
    if (callers) {
      await cachedCallerRead(res, hash, m[1]!, callers);
      return;
    }
    let row: LessonRow | undefined;
    if (statements === 1) {
      const r = await pool.query({ name: 'lesson_read', text: LESSON_READ_ONE, values: [hash, m[1]] });
      if (!r.rows[0]) {
        res.writeHead(401).end();
        return;
      }
      row = r.rows[0];
    } else {
      const caller = await pool.query({ name: 'caller_by_token', text: CALLER_BY_TOKEN, values: [hash] });
      const user = caller.rows[0];
      if (!user) {
        res.writeHead(401).end();
        return;
      }
      const r = await pool.query({
        name: 'lesson_page',
        text: LESSON_PAGE_CACHED_CALLER,
        values: [m[1], user.id],
      });
      row = r.rows[0];
    }
    writeLesson(res, row);
  } catch (err) {
    res.writeHead(500).end(String(err));
  }
});

/** BARE_CALLER_CACHE=1: one statement per read once the caller is known; the body written as Lab writes it. */
async function cachedCallerRead(
  res: http.ServerResponse,
  hash: string,
  lessonId: string,
  cache: Map<string, { id: string }>,
) {
  let user = cache.get(hash);
  if (!user) {
    user = (await pool.query({ name: 'caller_by_token', text: CALLER_BY_TOKEN, values: [hash] })).rows[0];
    if (!user) {
      res.writeHead(401).end();
      return;
    }
    cache.set(hash, user);
  }
  const r = await pool.query({
    name: 'lesson_page',
    text: LESSON_PAGE_CACHED_CALLER,
    values: [lessonId, user.id],
  });
  writeLesson(res, r.rows[0]);
}

interface LessonRow {
  role: string | null;
  visible: boolean;
  id: string;
  course_id: string;
  title: string;
  body: string;
  position: number;
  published_at: string | null;
  exercises: string;
}

/** 404 unless a member may see the lesson (staff see drafts), else the body Lab writes, byte for byte. */
function writeLesson(res: http.ServerResponse, row: LessonRow | undefined) {
  if (!row?.role || !(row.visible || row.role === 'instructor' || row.role === 'ta')) {
    res.writeHead(404).end();
    return;
  }
  const body =
    `{"lesson":{"id":${JSON.stringify(row.id)},"courseId":${JSON.stringify(row.course_id)},` +
    `"title":${JSON.stringify(row.title)},"body":${JSON.stringify(row.body)},"position":${row.position},` +
    `"publishedAt":${JSON.stringify(row.published_at)}},"exercises":${row.exercises}}`;
  res
    .writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    })
    .end(body);
}

server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  void pool.end().then(() => process.exit(0));
});
