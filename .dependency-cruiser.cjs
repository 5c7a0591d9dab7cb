/*
 * Import rules of the server (src/), checked by `npm run lint` (depcruise). The layers, top to bottom
 * (docs/architecture.md):
 *
 *   composition root   src/app.ts, src/server.ts, src/cli.ts, src/cluster/   — wires everything
 *   http, modules      src/http/ (plugins, shared route helpers), src/modules/<thing>/ (routes, use cases,
 *                      queries, presenters); modules may use http, never the reverse
 *   grading, realtime  src/grading/ (queue, grader, sandboxes), src/realtime/ (LISTEN → SSE); siblings
 *   db                 src/db/ (schema, pools, migrations, raw-row parsing, LISTEN connection)
 *   shared             src/shared/ (errors), src/contracts/ (JSON shapes and NOTIFY channels shared by
 *                      API, grader, realtime and web), src/lib/, src/config.ts — import nothing above
 *
 * A layer imports only from layers below it. Tests (*.test.ts) may import anything (they build the app).
 */

const TEST = '\\.test\\.ts$';


module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import circles, type-only imports included.',
      from: { pathNot: TEST },
      to: { circular: true },
    },
    {
      name: 'composition-root-is-top',
      severity: 'error',
      comment:
        'Only the composition root imports app.ts, server.ts, cli.ts and cluster/. Route modules get ' +
        'AppDeps/TypedApp from src/http/app-deps.ts.',
      from: { path: '^src/', pathNot: [TEST, '^src/(app|server|cli)\\.ts$', '^src/cluster/'] },
      to: { path: ['^src/(app|server|cli)\\.ts$', '^src/cluster/'] },
    },
    {
      name: 'http-not-to-modules',
      severity: 'error',
      comment: 'Modules build on src/http (auth, errors, schemas), so http must not import a module.',
      from: { path: '^src/http/', pathNot: TEST },
      to: { path: '^src/modules/' },
    },
    {
      name: 'grading-realtime-below-http-modules',
      severity: 'error',
      comment:
        'grading and realtime sit below http and modules: what they share with the API (errors, JSON ' +
        'shapes, channels) lives in src/shared or src/contracts.',
      from: { path: '^src/(grading|realtime)/', pathNot: TEST },
      to: { path: '^src/(http|modules)/' },
    },
    {
      name: 'grading-realtime-siblings',
      severity: 'error',
      comment: 'grading and realtime do not import each other; their contract is src/contracts (channels, events).',
      from: { path: '^src/(grading|realtime)/', pathNot: TEST },
      to: {
        path: '^src/(grading|realtime)/',
        pathNot: '^src/$1/',
      },
    },
    {
      name: 'db-is-below-the-rest',
      severity: 'error',
      comment: 'src/db is below http, modules, grading and realtime.',
      from: { path: '^src/db/', pathNot: TEST },
      to: { path: '^src/(http|modules|grading|realtime)/' },
    },
    {
      name: 'shared-is-the-bottom',
      severity: 'error',
      comment: 'src/shared, src/contracts, src/lib and src/config.ts import nothing of the app above them.',
      from: { path: ['^src/(shared|contracts|lib)/', '^src/config\\.ts$'], pathNot: TEST },
      to: { path: '^src/', pathNot: '^src/(shared|contracts|lib)/' },
    },
    {
      name: 'contracts-are-portable',
      severity: 'error',
      comment: 'src/contracts is shared with the web app: TypeBox only, no Node or server packages.',
      from: { path: '^src/contracts/', pathNot: TEST },
      to: { dependencyTypes: ['core', 'npm', 'npm-dev', 'npm-optional', 'npm-peer'], pathNot: '@sinclair/typebox' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a type import back into app.ts is still an import circle.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
    skipAnalysisNotInRules: true,
  },
};
