/**
 * The layering rules of src/ (docs/adr/0015-layering.md), checked by `npm run lint:layers` in
 * `npm run lint` and CI. From the top: the app (main.ts, app.*, request-pipeline.ts, openapi.*), the features (users, posts,
 * comments, auth, idempotency, mail, health), http/, database/, then what everything may use:
 * config/, the metric definitions (metrics/metrics.ts) and the entities (the schema). An import may
 * only point down; tests (`*.spec.ts`, test/) may import anything and are not checked.
 */
const FEATURES = '^src/(users|posts|comments|auth|idempotency|mail|health)/';
const APP = '^src/(main|app\\.module|app\\.setup|request-pipeline|openapi\\.command|openapi\\.document)\\.ts$';
/** Entity classes: the tables' shape, below the database layer that lists and maps them. */
const ENTITIES = '^src/[^/]+/(entities/[^/]+|[^/]+\\.entity)\\.ts$';

module.exports = {
  forbidden: [
    {
      name: 'database-below-http-and-features',
      comment:
        'database/ throws PersistenceErrors and knows nothing of HTTP or of the features that use it; ' +
        'http/persistence-problems.ts maps its errors to problems. It may read the entities (the schema).',
      severity: 'error',
      from: { path: '^src/database/' },
      to: { path: [FEATURES, '^src/http/', APP], pathNot: ENTITIES },
    },
    {
      name: 'database-uses-metric-definitions-only',
      comment:
        'The database layer counts into metrics/metrics.ts; the metrics that observe it (metrics/database-metrics.ts) sit above it.',
      severity: 'error',
      from: { path: '^src/database/' },
      to: { path: '^src/metrics/', pathNot: '^src/metrics/metrics\\.ts$' },
    },
    {
      name: 'http-below-features',
      comment: 'http/ is the toolkit controllers and services use; it names no feature.',
      severity: 'error',
      from: { path: '^src/http/' },
      to: { path: [FEATURES, APP], pathNot: ENTITIES },
    },
    {
      name: 'only-the-app-imports-the-app',
      comment:
        'main.ts, app.module.ts, app.setup.ts and the OpenAPI document assemble everything; nothing below imports them.',
      severity: 'error',
      from: { pathNot: APP },
      to: { path: APP },
    },
    {
      name: 'entities-are-the-schema',
      comment: 'Entity classes import only TypeORM and each other.',
      severity: 'error',
      from: { path: ENTITIES },
      to: { path: '^src/', pathNot: ENTITIES },
    },
    {
      name: 'config-is-the-ground',
      comment: 'config/ reads the environment; it imports nothing of the app.',
      severity: 'error',
      from: { path: '^src/config/' },
      to: { path: '^src/', pathNot: '^src/config/' },
    },
    {
      name: 'tracing-is-the-ground',
      comment:
        'tracing/ starts spans for whoever asks (the database layer too); it imports nothing of the app but config.',
      severity: 'error',
      from: { path: '^src/tracing/' },
      to: { path: '^src/', pathNot: '^src/(tracing|config)/' },
    },
    {
      name: 'no-circular',
      comment:
        'No import cycles, except among the entities: TypeORM relations name each other both ways, ' +
        'through functions called after every module loaded (() => Post).',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { pathNot: ENTITIES } },
    },
  ],
  options: {
    includeOnly: '^src/',
    exclude: { path: '\\.spec\\.ts$' },
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
