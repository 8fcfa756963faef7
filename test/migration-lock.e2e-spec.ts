import { readdirSync } from 'node:fs';
import { migrationsFolder } from '../src/database/dialects/dialect';
import { freshDatabase } from './setup/databases';
import { testDialect } from './setup/dialect';
import { type Instance, stopInstances } from './setup/instances';
import { startMain } from './setup/main-process';

/** The migrations of the test dialect, by class name (`InitialSchema1795321080503`), as the migrations table names them. */
function migrationNames(): string[] {
  return readdirSync(migrationsFolder(testDialect))
    .filter((file) => /^\d+-\w+\.ts$/.test(file))
    .map((file) => {
      const [, timestamp, name] = /^(\d+)-(\w+)\.ts$/.exec(file)!;
      return `${name}${timestamp}`;
    })
    .sort();
}

describe('migrations when several instances start at once', () => {
  it('3 instances started together on an empty database: one applies each migration once, the others wait, all serve', async () => {
    const db = await freshDatabase('migrations');
    let instances: Instance[] = [];
    try {
      const started = await Promise.allSettled(
        Array.from({ length: 3 }, () =>
          // Three compilations at once on a busy machine take their time: the start is not what is measured.
          startMain({ DATABASE_URL: db.url, DB_MIGRATIONS_RUN: 'true' }, { readyWithinMs: 150_000 }),
        ),
      );
      instances = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      const failed = started.flatMap((result) => (result.status === 'rejected' ? [String(result.reason)] : []));
      expect(failed).toEqual([]);

      const applied = await db.query<{ name: string }[]>('SELECT name FROM migrations');
      expect(applied.map((row) => row.name).sort()).toEqual(migrationNames()); // each once
      const appliedBy = instances.map((instance) => instance.output().match(/Applied migration /g)?.length ?? 0);
      expect(appliedBy.toSorted()).toEqual([0, 0, migrationNames().length]);
      for (const instance of instances) {
        const res = await fetch(`${instance.base}/users?limit=1`);
        expect(res.status).toBe(200);
      }
    } finally {
      await stopInstances(instances);
      await db.drop();
    }
  }, 240_000);
});
