/*
 * The tree deploy/Containerfile builds, assembled without a container engine (none can pull a base
 * image here): the Containerfile itself is read and its stages replayed on this host, each stage's
 * file system a folder — WORKDIR, COPY (from the build context, or --from an earlier stage), RUN
 * (through sh, in the stage's work folder, with its ENV), ENV, USER, ENTRYPOINT, CMD, HEALTHCHECK.
 * RUN lines that install system packages (apt-get) are left to the host, which must have what they
 * install (node, bubblewrap, python3, python3-seccomp); every other line is replayed as written, so
 * the tree cannot drift from the image.
 *
 *   npx tsx deploy/assemble.ts [out-folder]   prints the image's folder and how to start it
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Image {
  /** The final stage's file system. */
  root: string;
  /** Its WORKDIR, as a path on this host. */
  workdir: string;
  env: Record<string, string>;
  user: string;
  entrypoint: string[];
  cmd: string[];
  /** The HEALTHCHECK command (shell form), if any. */
  healthcheck: string | null;
  /** Every path COPY put into the final stage, relative to its root. */
  copied: string[];
  /** RUN lines left to the host (system packages). */
  skipped: string[];
}

interface Stage {
  name: string;
  root: string;
  workdir: string;
  env: Record<string, string>;
}

/** The Containerfile's instructions: continuation lines joined, comments dropped. */
export function parseContainerfile(text: string): Array<{ op: string; args: string }> {
  const out: Array<{ op: string; args: string }> = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\w+)\s+(.*)$/.exec(full);
    if (!m) throw new Error(`Containerfile: cannot read "${full}"`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]! });
  }
  return out;
}

/** KEY=value pairs of ENV (values without spaces, or double-quoted). */
function parseEnv(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of args.matchAll(/(\w+)=("([^"]*)"|\S*)/g)) env[m[1]!] = m[3] ?? m[2]!;
  return env;
}

const execForm = (args: string): string[] => JSON.parse(args) as string[];

/** A path inside a stage, as a path on this host. */
const inStage = (stage: Stage, p: string) =>
  path.join(stage.root, path.posix.isAbsolute(p) ? p : path.posix.join(stage.workdir, p));

export async function assemble(opts: {
  containerfile: string;
  context: string;
  out: string;
}): Promise<Image> {
  const steps = parseContainerfile(fs.readFileSync(opts.containerfile, 'utf8'));
  fs.rmSync(opts.out, { recursive: true, force: true });
  const stages: Stage[] = [];
  let stage: Stage | null = null;
  const image: Omit<Image, 'root' | 'workdir' | 'env'> = {
    user: 'root',
    entrypoint: [],
    cmd: [],
    healthcheck: null,
    copied: [],
    skipped: [],
  };
  for (const { op, args } of steps) {
    if (op === 'FROM') {
      const name = /\s+AS\s+(\S+)$/i.exec(args)?.[1] ?? `stage-${stages.length}`;
      stage = { name, root: path.join(opts.out, name), workdir: '/', env: {} };
      fs.mkdirSync(stage.root, { recursive: true });
      stages.push(stage);
      Object.assign(image, { user: 'root', copied: [], skipped: [] });
      continue;
    }
    if (!stage) throw new Error(`Containerfile: ${op} before FROM`);
    switch (op) {
      case 'WORKDIR':
        stage.workdir = path.posix.resolve(stage.workdir, args);
        fs.mkdirSync(inStage(stage, '.'), { recursive: true });
        break;
      case 'ENV':
        Object.assign(stage.env, parseEnv(args));
        break;
      case 'COPY': {
        const words = args.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        const paths = words.filter((w) => !w.startsWith('--'));
        const dest = paths.pop()!;
        const source = from ? stages.find((s) => s.name === from) : null;
        if (from && !source) throw new Error(`Containerfile: COPY --from=${from}: no such stage`);
        for (const src of paths) {
          const file = source ? inStage(source, src) : path.join(opts.context, src);
          if (!fs.existsSync(file)) throw new Error(`Containerfile: COPY ${src}: not found`);
          // A folder's contents go to dest; files go into dest when it is a folder (ends with /).
          const target =
            !fs.statSync(file).isDirectory() && dest.endsWith('/')
              ? inStage(stage, path.posix.join(dest, path.basename(src)))
              : inStage(stage, dest);
          fs.mkdirSync(path.dirname(target), { recursive: true });
          fs.cpSync(file, target, { recursive: true });
          image.copied.push(path.relative(stage.root, target));
        }
        break;
      }
      case 'RUN': {
        if (/\bapt-get\b/.test(args)) {
          image.skipped.push(args);
          break;
        }
        await run(args, inStage(stage, '.'), stage.env);
        break;
      }
      case 'USER':
        image.user = args.trim();
        break;
      case 'ENTRYPOINT':
        image.entrypoint = execForm(args);
        break;
      case 'CMD':
        image.cmd = execForm(args);
        break;
      case 'HEALTHCHECK':
        image.healthcheck = /\bCMD\s+(.*)$/.exec(args)?.[1] ?? null;
        break;
      case 'EXPOSE':
      case 'STOPSIGNAL':
      case 'ARG':
      case 'LABEL':
        break;
      default:
        throw new Error(`Containerfile: ${op} is not replayed by deploy/assemble.ts`);
    }
  }
  if (!stage) throw new Error('Containerfile: no stage');
  return { ...image, root: stage.root, workdir: inStage(stage, '.'), env: { ...stage.env } };
}

/** A RUN line through sh (asynchronously: a caller's event loop keeps turning during npm ci). */
function run(line: string, cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', line], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    child.stdout.on('data', (c: Buffer) => output.push(c.toString()));
    child.stderr.on('data', (c: Buffer) => output.push(c.toString()));
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(
            new Error(
              `Containerfile: RUN ${line} failed (${code ?? signal}):\n${output.join('').slice(-8000)}`,
            ),
          ),
    );
  });
}

/**
 * The command the image runs for `args` (ENTRYPOINT + args, or + CMD), on this host: an init in front
 * of node (tini) is left out when the host has none, and `node` is this Node.
 */
export function imageCommand(image: Image, args: string[] = image.cmd): string[] {
  let command = [...image.entrypoint, ...args];
  if (command[0]?.endsWith('/tini') && !fs.existsSync(command[0]))
    command = command.slice(command[1] === '--' ? 2 : 1);
  if (command[0] === 'node') command[0] = process.execPath;
  return command;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const context = path.resolve(import.meta.dirname, '..');
  const out = path.resolve(process.argv[2] ?? path.join(context, '.lab', 'image'));
  const image = await assemble({
    containerfile: path.join(context, 'deploy', 'Containerfile'),
    context,
    out,
  });
  console.log(`image tree: ${image.workdir} (user ${image.user})`);
  for (const line of image.skipped) console.log(`left to this host: RUN ${line}`);
  const env = Object.entries(image.env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  console.log(
    `start: cd ${image.workdir} && ${env} DATABASE_URL=postgres://… ${imageCommand(image).join(' ')}`,
  );
}
