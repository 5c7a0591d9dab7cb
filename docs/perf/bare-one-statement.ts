// The Node ceiling for Lab's GET /api/v1/lessons/:id as Lab now does it: node:http + pg, the caller
// kept in a Map after its first lookup (no invalidation, no TTL: the cheapest cache there is), then the
// one statement Lab runs (`lesson_page`: the lesson's columns and the exercise list as JSON text), the body
// written as Lab writes it.
// No framework, validation, hooks, metrics or error shaping. Run by docs/perf/lesson-read.ts.
import { createHash } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';
import { CALLER_BY_TOKEN } from '../../bench/baseline/sql.ts';
import { LESSON_PAGE_HYBRID } from './sql.ts';

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.POOL_MAX ?? 4),
  application_name: 'lab:bench-bare-one',
});
const callers = new Map<string, { id: string }>();

const server = http.createServer(async (req, res) => {
  try {
    if (req.url === '/readyz') {
      res.writeHead(200).end('ok');
      return;
    }
    const m = /^\/api\/v1\/lessons\/([0-9a-f-]{36})$/.exec(req.url ?? '');
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!m || !token) {
      res.writeHead(404).end();
      return;
    }
    const hash = createHash('sha256').update(token).digest('hex');
    let user = callers.get(hash);
    if (!user) {
      user = (await pool.query({ name: 'caller_by_token', text: CALLER_BY_TOKEN, values: [hash] })).rows[0];
      if (!user) {
        res.writeHead(401).end();
        return;
      }
      callers.set(hash, user);
    }
    const r = await pool.query({ name: 'lesson_page', text: LESSON_PAGE_HYBRID, values: [m[1], user.id] });
    const row = r.rows[0];
    if (!row?.role || !row.visible) {
      res.writeHead(404).end();
      return;
    }
    const body =
      `{"lesson":{"id":${JSON.stringify(row.id)},"courseId":${JSON.stringify(row.course_id)},` +
      `"title":${JSON.stringify(row.title)},"body":${JSON.stringify(row.body)},"position":${row.position},` +
      `"publishedAt":${JSON.stringify(row.published_at)}},"exercises":${row.exercises}}`;
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(body);
  } catch (err) {
    res.writeHead(500).end(String(err));
  }
});

server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  void pool.end().then(() => process.exit(0));
});
