import { readdirSync, readFileSync } from 'node:fs';
import { DIALECTS, migrationsFolder } from '../dialects/dialect';

/**
 * TypeORM runs pending migrations in timestamp order (the number the file and class names start with).
 * A migration dated in the future sorts after every migration written before that date, so a schema
 * migration dated ahead would run after the changes to the tables it creates, on every fresh database.
 */
describe('migrations', () => {
  it.each(DIALECTS)('%s: every migration is dated in the past, file name and class name agreeing', (dialect) => {
    const files = readdirSync(migrationsFolder(dialect)).filter((file) => /\.(ts|js)$/.test(file));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const [, timestamp, name] = /^(\d{13})-(\w+)\.(ts|js)$/.exec(file) ?? [];
      expect({ file, wellNamed: Boolean(timestamp) }).toEqual({ file, wellNamed: true });
      expect({ file, inThePast: Number(timestamp) <= Date.now() }).toEqual({ file, inThePast: true });
      const source = readFileSync(`${migrationsFolder(dialect)}/${file}`, 'utf8');
      expect({ file, classes: [...source.matchAll(/export class (\w+)/g)].map(([, c]) => c) }).toEqual({
        file,
        classes: [`${name}${timestamp}`],
      });
    }
  });
});
