import { describeOn } from './setup/dialect';
import { useTestApp } from './setup/test-app';

/**
 * What MariaDB/MySQL need set per connection to behave like PostgreSQL (database/data-source.options.ts);
 * the rest of the suite checks the behaviour itself on every dialect.
 */
describeOn(['mysql'], 'these are MariaDB/MySQL session settings')('MariaDB/MySQL sessions', () => {
  const t = useTestApp();

  it('every pooled connection is strict (a value that does not fit fails, never truncated), in UTC, READ COMMITTED', async () => {
    // Several at once, so the answer comes from more than one pooled connection.
    const sessions = await Promise.all(
      Array.from({ length: 5 }, () =>
        t.query<{ mode: string; zone: string; isolation: string }[]>(
          'SELECT @@SESSION.sql_mode AS mode, @@SESSION.time_zone AS zone, @@SESSION.tx_isolation AS isolation',
        ),
      ),
    );
    for (const [session] of sessions) {
      expect(session.mode.split(',')).toContain('STRICT_ALL_TABLES');
      expect(session).toMatchObject({ zone: '+00:00', isolation: 'READ-COMMITTED' });
    }
  });
});
