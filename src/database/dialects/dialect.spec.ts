import { DataSource } from 'typeorm';
import { loadConfig } from '../../config/app.config';
import { urlDialect } from '../../config/database-url';
import { DialectError, dialectOf, useColumnTypesOf } from './dialect';

/** Whether the configuration accepts `vars` (loadConfig throws a ConfigError otherwise). */
function validate(vars: Record<string, string>): boolean {
  try {
    loadConfig({ LOG_LEVEL: 'silent', ...vars });
    return true;
  } catch {
    return false;
  }
}
import { entities } from '../entities';

/** The entity metadata TypeORM builds for `type`, without connecting. */
async function metadataFor(type: 'postgres' | 'mysql' | 'better-sqlite3') {
  // `driver: {}`: the optional driver packages need not be installed (npm test runs before npm run drivers).
  const options = { type, entities, database: 'x', ...(type !== 'postgres' && { driver: {} }) };
  const dataSource = new DataSource(options);
  await (dataSource as unknown as { buildMetadatas(): Promise<void> }).buildMetadatas();
  return dataSource;
}

describe('dialectOf', () => {
  it.each([
    ['postgres://u@h/db', 'postgres'],
    ['postgresql://u@h/db', 'postgres'],
    ['mysql://root@127.0.0.1:3306/test', 'mysql'],
    ['mariadb://root@127.0.0.1:3306/test', 'mysql'],
    ['sqlite:./.data/app.db', 'sqlite'],
    ['sqlite::memory:', 'sqlite'],
  ])('reads %s as %s', (url, dialect) => {
    expect(dialectOf(url)).toBe(dialect);
  });

  it('reads a URL as the configuration validates it: one parser (a scheme without // is no network URL)', () => {
    for (const url of ['postgres:db', 'mysql:db', 'MARIADB://root@h/db', 'sqlite:x.db']) {
      const valid = validate({ DATABASE_URL: url });
      expect(valid).toBe(urlDialect(url) !== undefined);
      if (!valid) expect(() => dialectOf(url)).toThrow(DialectError);
    }
  });

  it('refuses any other scheme in one line saying which URLs work', () => {
    expect(() => dialectOf('mssql://sa@h/db')).toThrow(DialectError);
    expect(() => dialectOf('mssql://sa@h/db')).toThrow(
      /^[^\n]*give a postgres:\/\/, mysql:\/\/, mariadb:\/\/ or sqlite: URL$/,
    );
  });
});

describe('useColumnTypesOf', () => {
  afterAll(() => useColumnTypesOf('postgres'));

  it('maps the entities’ PostgreSQL types for MySQL, and back', async () => {
    useColumnTypesOf('mysql');
    const mysql = await metadataFor('mysql');
    const users = mysql.getMetadata('users');
    expect(users.findColumnWithPropertyName('createdAt')).toMatchObject({ type: 'datetime', precision: 3 });
    expect(users.findColumnWithPropertyName('id')).toMatchObject({ generationStrategy: 'increment' });
    expect(users.findColumnWithPropertyName('emailLower')).toMatchObject({
      generatedType: 'STORED',
      collation: 'utf8mb4_bin',
    });
    expect(mysql.getMetadata('refresh_tokens').findColumnWithPropertyName('tokenHash')).toMatchObject({
      type: 'binary',
      length: '32',
    });

    useColumnTypesOf('postgres');
    const postgres = await metadataFor('postgres');
    const pgUsers = postgres.getMetadata('users');
    expect(pgUsers.findColumnWithPropertyName('createdAt')).toMatchObject({ type: 'timestamptz', precision: 3 });
    expect(pgUsers.findColumnWithPropertyName('id')).toMatchObject({ generationStrategy: 'identity' });
    expect(pgUsers.findColumnWithPropertyName('emailLower')).toBeUndefined();
  });

  it('maps them for SQLite (millisecond text timestamps, blob, varchar uuid, enum as CHECK, email_lower), and back', async () => {
    useColumnTypesOf('sqlite');
    const sqlite = await metadataFor('better-sqlite3');
    const users = sqlite.getMetadata('users');
    expect(users.findColumnWithPropertyName('createdAt')).toMatchObject({ type: 'datetime' });
    expect((users.findColumnWithPropertyName('createdAt')!.default as () => string)()).toBe(
      "strftime('%Y-%m-%d %H:%M:%f','now')",
    );
    expect(users.findColumnWithPropertyName('id')).toMatchObject({ generationStrategy: 'increment' });
    expect(users.findColumnWithPropertyName('role')).toMatchObject({ type: 'simple-enum', enum: ['user', 'admin'] });
    expect(users.findColumnWithPropertyName('emailLower')).toMatchObject({
      generatedType: 'VIRTUAL',
      asExpression: 'lower("email")',
    });
    expect(users.findColumnWithPropertyName('emailLower')!.collation).toBeUndefined();
    expect(sqlite.getMetadata('refresh_tokens').findColumnWithPropertyName('tokenHash')).toMatchObject({
      type: 'blob',
    });

    useColumnTypesOf('postgres');
    const pgUsers = (await metadataFor('postgres')).getMetadata('users');
    expect(pgUsers.findColumnWithPropertyName('createdAt')).toMatchObject({ type: 'timestamptz', precision: 3 });
    expect(pgUsers.findColumnWithPropertyName('emailLower')).toBeUndefined();
  });
});
