import { fromSqliteTimestamp, sqliteDatabasePath, toSqliteTimestamp, translateSqliteError } from './sqlite';

describe('sqliteDatabasePath', () => {
  it.each([
    ['sqlite:./.data/app.db', './.data/app.db'],
    ['sqlite:/var/lib/app.db', '/var/lib/app.db'],
    ['sqlite::memory:', ':memory:'],
    ['sqlite:./with%20space.db', './with space.db'],
  ])('reads %s as %s', (url, path) => {
    expect(sqliteDatabasePath(url)).toBe(path);
  });

  it.each(['sqlite:', 'sqlite://host/app.db'])('refuses %s in one line naming the forms that work', (url) => {
    expect(() => sqliteDatabasePath(url)).toThrow(
      /^[^\n]*sqlite:\.\/path\/to\.db, sqlite:\/absolute\/path\.db or sqlite::memory:$/,
    );
  });
});

describe('SQLite timestamps', () => {
  it('are UTC text with milliseconds, in the format TypeORM binds, and read back as the same instant', () => {
    const date = new Date('2026-11-30T08:58:24.490Z');
    expect(toSqliteTimestamp(date)).toBe('2026-11-30 08:58:24.490');
    expect(fromSqliteTimestamp('2026-11-30 08:58:24.490')).toEqual(date);
    expect(fromSqliteTimestamp(null)).toBeNull();
  });
});

describe('translateSqliteError (SQLite in PostgreSQL’s terms)', () => {
  it('names the index of a unique violation SQLite reports by name', () => {
    expect(
      translateSqliteError({
        code: 'SQLITE_CONSTRAINT_UNIQUE',
        message: "UNIQUE constraint failed: index 'users_email_lower_key'",
      }),
    ).toEqual({ code: '23505', constraint: 'users_email_lower_key' });
  });

  it('maps foreign key, check, not-null, value and busy errors to the SQLSTATEs pg reports', () => {
    const fk = { code: 'SQLITE_CONSTRAINT_FOREIGNKEY', message: 'FOREIGN KEY constraint failed' };
    expect(translateSqliteError({ ...fk, constraint: 'comments_post_id_fkey' }, 'INSERT INTO "comments" …')).toEqual({
      code: '23503',
      constraint: 'comments_post_id_fkey',
      detail: undefined,
    });
    expect(translateSqliteError(fk, 'DELETE FROM "users" WHERE id = ?')).toEqual({
      code: '23503',
      detail: 'still referenced',
    });
    expect(translateSqliteError({ code: 'SQLITE_CONSTRAINT_CHECK' })?.code).toBe('23514');
    expect(translateSqliteError({ code: 'SQLITE_CONSTRAINT_NOTNULL' })?.code).toBe('23502');
    expect(translateSqliteError({ code: 'SQLITE_TOOBIG' })?.code).toBe('22000');
    for (const code of ['SQLITE_BUSY', 'SQLITE_BUSY_TIMEOUT', 'SQLITE_LOCKED', 'SQLITE_FULL', 'SQLITE_IOERR_WRITE']) {
      expect(translateSqliteError({ code })?.code).toBe('57P03');
    }
  });

  it('leaves other errors alone', () => {
    expect(translateSqliteError({ code: '23505' })).toBeUndefined();
    expect(translateSqliteError({ code: 'SQLITE_ERROR', message: 'no such table: x' })).toBeUndefined();
  });
});
