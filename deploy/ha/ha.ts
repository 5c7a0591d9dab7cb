/**
 * `npm run ha -- up | down [--wipe] | status`: the highly available Postgres of deploy/ha (etcd, three
 * Patroni nodes, HAProxy) on this machine, for trying Lab against a real failover. The cluster lives in
 * HA_DIR (default .lab/ha) and keeps running after this command returns; `down` stops it (and `--wipe`
 * deletes its data).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { projectRoot, unreachableAncestor } from '../../src/cluster/supervisor.ts';
import { type Cluster, DEFAULT_PORTS, NODE_NAMES, openCluster, startCluster } from './cluster.ts';

const USAGE = `usage: npm run ha -- <command>
  up             start the cluster in HA_DIR (create it the first time): etcd, Patroni n1..n3, HAProxy
  status         daemons, members (role, state, lag) and the URLs to give Lab
  down [--wipe]  stop everything (--wipe also deletes the data)
  crash <node>   SIGKILL a node's Patroni, postmaster and every backend at once (a machine crash)
  start <node>   start a node's Patroni again (it rewinds and rejoins as a replica)
  switchover [node]  planned switchover to <node> (default: the synchronous standby)
Ports: Postgres ${DEFAULT_PORTS.pg.join('/')}, Patroni REST ${DEFAULT_PORTS.rest.join('/')}, etcd ${DEFAULT_PORTS.etcdClient}/${DEFAULT_PORTS.etcdPeer},
HAProxy ${DEFAULT_PORTS.primary} (primary) / ${DEFAULT_PORTS.replicas} (replicas) / ${DEFAULT_PORTS.stats} (stats page).`;

/** HA_DIR, or .lab/ha; as root, somewhere the postgres user can reach (not under /root). */
async function clusterDir(): Promise<string> {
  const wanted = path.resolve(process.env.HA_DIR ?? path.join(projectRoot, '.lab', 'ha'));
  if ((await unreachableAncestor(path.join(wanted, 'node', 'data'))) === null) return wanted;
  const id = createHash('sha256').update(wanted).digest('hex').slice(0, 8);
  const fallback = path.join('/var/lib/lab', `${path.basename(projectRoot)}-${id}`, 'ha');
  console.log(`the postgres user cannot reach ${wanted}; using ${fallback}`);
  return fallback;
}

function envLines(cluster: Cluster): string {
  return `DATABASE_URL=${cluster.url('primary')}\nDATABASE_READ_URL=${cluster.url('replicas')}\n`;
}

async function status(cluster: Cluster) {
  console.log(`cluster ${cluster.state.scope} in ${cluster.dir}`);
  for (const d of cluster.daemons())
    console.log(`  ${d.name.padEnd(12)} ${d.alive ? `running (pid ${d.pid})` : 'stopped'}`);
  const members = await cluster.members();
  if (members.length) {
    console.log('members (Patroni):');
    for (const m of members)
      console.log(
        `  ${m.name}  ${m.role.padEnd(13)} ${m.state.padEnd(10)} timeline ${m.timeline ?? '-'}  lag ${m.lag ?? '-'}`,
      );
  }
  console.log(`HAProxy stats: http://127.0.0.1:${cluster.state.ports.stats}/`);
  console.log(`Lab's settings (also in ${path.join(cluster.dir, 'lab.env')}):\n${envLines(cluster)}`);
}

async function main() {
  const [command = 'help', ...rest] = process.argv.slice(2);
  const dir = await clusterDir();
  const log = (line: string) => console.log(line);
  switch (command) {
    case 'up': {
      const cluster = await startCluster({ dir, ports: DEFAULT_PORTS, log });
      await fs.writeFile(path.join(cluster.dir, 'lab.env'), envLines(cluster), { mode: 0o600 });
      await status(cluster);
      console.log(
        'Run Lab against it (migrations, demo course, API workers, graders):\n' +
          `  set -a; . ${path.join(cluster.dir, 'lab.env')}; set +a; npm start\n` +
          `Try a failover: npm run ha -- crash <leader>, then npm run ha -- start <it>; or npm run ha -- switchover (patronictl -c ${path.join(
            cluster.dir,
            NODE_NAMES[0],
            'patroni.yml',
          )} list).`,
      );
      return;
    }
    case 'status': {
      const cluster = await openCluster(dir);
      if (!cluster) return console.log(`no cluster in ${dir}; start one with: npm run ha -- up`);
      await status(cluster);
      return;
    }
    case 'crash':
    case 'start':
    case 'switchover': {
      const cluster = await openCluster(dir, log);
      if (!cluster) return console.log(`no cluster in ${dir}; start one with: npm run ha -- up`);
      const node = rest[0];
      if (command !== 'switchover' && !node) throw new Error(`usage: npm run ha -- ${command} <n1|n2|n3>`);
      if (node) cluster.index(node);
      const t0 = Date.now();
      if (command === 'crash') console.log(`killed ${cluster.crashNode(node!).join(' ')}`);
      else if (command === 'start') await cluster.startNode(node!);
      else console.log(`switched over to ${await cluster.switchover(node)} in ${Date.now() - t0} ms`);
      await status(cluster);
      return;
    }
    case 'down': {
      const cluster = await openCluster(dir, log);
      if (!cluster) return console.log(`no cluster in ${dir}`);
      if (rest.includes('--wipe')) {
        await cluster.destroy();
        console.log(`stopped; ${dir} deleted`);
      } else {
        await cluster.stop();
        console.log(`stopped (data kept in ${dir}; \`down --wipe\` deletes it)`);
      }
      return;
    }
    default:
      console.log(USAGE);
      if (command !== 'help') process.exitCode = 2;
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
