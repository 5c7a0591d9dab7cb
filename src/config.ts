import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

// Every setting Lab reads from the environment, with its default. README "Configuration" mirrors this list.
const Int = (def: number, min: number, max: number, description: string) =>
  Type.Integer({ default: def, minimum: min, maximum: max, description });

export const ConfigSchema = Type.Object({
  PORT: Int(3000, 0, 65535, 'HTTP port'),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1, description: 'interface to listen on' }),
  DATABASE_URL: Type.Optional(
    Type.String({ pattern: '^postgres(ql)?://', description: 'Postgres URL; unset = embedded Postgres' }),
  ),
  DATABASE_READ_URL: Type.Optional(
    Type.String({
      pattern: '^postgres(ql)?://',
      description:
        'Postgres URL of read replicas (e.g. HAProxy on Patroni /replica); unset = every read on DATABASE_URL',
    }),
  ),
  DATA_DIR: Type.String({
    default: '.lab',
    description: 'folder for the embedded Postgres data and runtime files',
  }),
  WORKERS: Int(3, 1, 64, 'API worker processes started by `lab up`'),
  GRADERS: Int(
    1,
    0,
    64,
    'grader processes in the fleet (started by `lab up`; counted in the connection budget)',
  ),
  INSTANCES: Int(3, 1, 1000, 'API instances expected in the fleet (connection budget)'),
  DB_POOL_MAX: Int(4, 1, 200, 'connections per API instance for light requests'),
  DB_HEAVY_POOL_MAX: Int(1, 1, 50, 'connections per API instance for heavy routes (gradebook, CSV, regrade)'),
  DB_POOL_ACQUIRE_TIMEOUT_MS: Int(2000, 10, 60000, 'longest wait for a pooled connection before 503'),
  DB_POOL_MAX_WAITING: Int(200, 0, 100000, 'requests allowed to wait for a connection before 503 at once'),
  DB_STATEMENT_TIMEOUT_MS: Int(5000, 100, 600000, 'statement_timeout set on every connection'),
  DB_RETRY_MS: Int(
    2000,
    0,
    60000,
    'a request that failed because the database was unavailable (failover) is retried this long when safe, then 503; 0 = off',
  ),
  DB_RESERVED_CONNECTIONS: Int(5, 0, 1000, 'connections kept free for migrations, admin and doctor'),
  GRADER_POOL_MAX: Int(
    3,
    2,
    50,
    'connections per grader process: its LISTEN connection and a pool for the rest',
  ),
  GRADER_CONCURRENCY: Int(4, 1, 256, 'jobs one grader runs at once'),
  GRADING_MAX_SUBMISSION_MS: Int(
    30_000,
    1000,
    600_000,
    'grading time one submission may use in all, whatever its tests × time limits add up to',
  ),
  PYTHON_BOX_STARTS: Int(
    1,
    1,
    256,
    'Python boxes one grader starts at once (spawn to the interpreter ready; their programs run up to GRADER_CONCURRENCY)',
  ),
  JS_WORKERS: Int(0, 0, 256, 'JavaScript sandbox worker threads per grader; 0 = one per core'),
  SANDBOX_UID_BASE: Int(61_000, 1000, 4_000_000_000, 'first host uid given to Python boxes (root only)'),
  SANDBOX_UID_COUNT: Int(1000, 1, 100_000, 'host uids reserved for Python boxes, one per box running'),
  SANDBOX_CGROUPS: Type.Union([Type.Literal('auto'), Type.Literal('off')], {
    default: 'auto',
    description: 'per-box memory and pids cgroups for Python: auto = when the host allows them',
  }),
  SUBMISSIONS_PER_MINUTE: Int(20, 1, 1_000_000, 'submissions one user may make per minute (429 beyond)'),
  REGISTRATIONS_PER_HOUR: Int(20, 1, 1_000_000, 'accounts one IP address may register per hour'),
  JOIN_FAILURES_PER_HOUR: Int(20, 1, 1_000_000, 'wrong join codes one IP address may try per hour'),
  HEAVY_CONCURRENCY: Int(2, 1, 100, 'heavy requests one instance runs at once'),
  REQUEST_TIMEOUT_MS: Int(15000, 100, 600000, 'a request taking longer is answered 503'),
  MAX_SSE_STREAMS: Int(5000, 0, 1000000, 'open /events streams per instance before 503'),
  SSE_HEARTBEAT_MS: Int(15000, 50, 600000, 'comment heartbeat interval on /events streams'),
  MAX_EVENT_LOOP_DELAY_MS: Int(1000, 0, 60000, 'shed load (503) above this event-loop delay; 0 = off'),
  MAX_HEAP_USED_BYTES: Int(0, 0, Number.MAX_SAFE_INTEGER, 'shed load above this heap use; 0 = off'),
  SESSION_TTL_HOURS: Int(24 * 14, 1, 24 * 365, 'lifetime of a cookie session'),
  SHUTDOWN_GRACE_MS: Int(
    1500,
    0,
    120000,
    'after SIGTERM, keep serving this long so the load balancer notices',
  ),
  TRUSTED_ORIGINS: Type.String({
    default: '',
    description: 'comma-separated extra origins accepted by CSRF check',
  }),
  TRUST_PROXY: Type.Boolean({ default: false, description: 'trust X-Forwarded-* from a load balancer' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info', description: 'pino log level' },
  ),
  INSTANCE_NAME: Type.String({
    default: '',
    description: 'name of this process in application_name and logs',
  }),
});

export type Config = Readonly<Static<typeof ConfigSchema>>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Environment → validated, frozen config. Lists every bad variable at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(ConfigSchema.properties)) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const converted = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, raw));
  const merged = { ...(converted as object), ...overrides };
  const problems = [...Value.Errors(ConfigSchema, merged)].map((e) => {
    const key = e.path.replace(/^\//, '');
    const schema = ConfigSchema.properties[key as keyof typeof ConfigSchema.properties];
    const expected = schema?.description ? ` (${schema.description})` : '';
    return `${key}=${JSON.stringify(env[key] ?? (merged as Record<string, unknown>)[key])}: ${e.message}${expected}`;
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(merged as Config);
}

/** The config for printing: passwords in URLs masked. */
export function maskedConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const key of ['DATABASE_URL', 'DATABASE_READ_URL'] as const)
    if (config[key]) out[key] = config[key].replace(/:\/\/([^:@/]+):[^@]*@/, '://$1:****@');
  return out;
}
