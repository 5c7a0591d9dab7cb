// bare-server.ts's cached-caller lesson read (BARE_CALLER_CACHE=1) served by Fastify with its defaults
// (no logger, no hooks, no schemas): how much of the gap between Lab and bare node:http is the
// framework the stack prescribes, before any of Lab's own work. Used by docs/perf/lesson-read.ts.
import { createHash } from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';
import { CALLER_BY_TOKEN, LESSON_PAGE_CACHED_CALLER } from './sql.ts';

const callers = new Map<string, { id: string }>();
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.POOL_MAX ?? 4),
  application_name: 'lab:bench-fastify',
});
const app = Fastify({ logger: false });

app.get('/readyz', async () => 'ok');
app.get('/config', async () => ({ poolMax: pool.options.max, statements: 1, framework: 'fastify' }));
app.get<{ Params: { id: string } }>('/api/v1/lessons/:id', async (request, reply) => {
  const token = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1];
  if (!token) return reply.code(401).send();
  const hash = createHash('sha256').update(token).digest('hex');
  let user = callers.get(hash);
  if (!user) {
    user = (await pool.query({ name: 'caller_by_token', text: CALLER_BY_TOKEN, values: [hash] })).rows[0];
    if (!user) return reply.code(401).send();
    callers.set(hash, user);
  }
  const r = await pool.query({
    name: 'lesson_page',
    text: LESSON_PAGE_CACHED_CALLER,
    values: [request.params.id, user.id],
  });
  const row = r.rows[0];
  if (!row?.role || !row.visible) return reply.code(404).send();
  return reply
    .type('application/json; charset=utf-8')
    .send(
      `{"lesson":{"id":${JSON.stringify(row.id)},"courseId":${JSON.stringify(row.course_id)},` +
        `"title":${JSON.stringify(row.title)},"body":${JSON.stringify(row.body)},"position":${row.position},` +
        `"publishedAt":${JSON.stringify(row.published_at)}},"exercises":${row.exercises}}`,
    );
});

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.on('SIGTERM', () => {
  void app.close().then(() => pool.end().then(() => process.exit(0)));
});
