import { testDialect } from './setup/dialect';
import { useTestApp } from './setup/test-app';

/**
 * How `q` folds case, per dialect, as docs/api.md ("Text") documents it. No dialect folds fully
 * (Unicode's `ß` = `ss` is no lower-casing): PostgreSQL (ILIKE, the database's LC_CTYPE; C.UTF-8 on
 * the test servers) and MariaDB/MySQL (LOWER() of both sides) lower-case one character at a time;
 * SQLite runs JavaScript's toLowerCase (database/dialects/sqlite.ts), which knows the final sigma and
 * lowers İ to i + U+0307. These pins fail when a dialect's folding changes, so the docs get updated.
 */
describe('GET /posts?q= folds case per dialect as documented (docs/api.md, Text)', () => {
  const t = useTestApp();
  const TITLES = ['ΣΟΦΟΣ', 'σοφος', 'İSTANBUL', 'istanbul', 'STRASSE', 'straße', 'ÉCOLE', 'école'];
  const perCharacter: Record<string, string[]> = {
    σοφος: ['σοφος'],
    ΣΟΦΟΣ: ['ΣΟΦΟΣ'],
    istanbul: ['istanbul', 'İSTANBUL'],
    İstanbul: ['istanbul', 'İSTANBUL'],
    strasse: ['STRASSE'],
    straße: ['straße'],
    ÉCOLE: ['ÉCOLE', 'école'],
  };
  const expected: Record<string, Record<string, string[]>> = {
    postgres: perCharacter,
    mysql: perCharacter,
    sqlite: {
      σοφος: ['ΣΟΦΟΣ', 'σοφος'],
      ΣΟΦΟΣ: ['ΣΟΦΟΣ', 'σοφος'],
      istanbul: ['istanbul'],
      İstanbul: ['İSTANBUL'],
      strasse: ['STRASSE'],
      straße: ['straße'],
      ÉCOLE: ['ÉCOLE', 'école'],
    },
  };

  it(`on ${testDialect}: final sigma, dotted İ, ß and accented capitals`, async () => {
    const ada = await t.db.user('Ada');
    for (const title of TITLES) await t.db.post(ada.id, title);
    const found: Record<string, string[]> = {};
    for (const q of Object.keys(expected[testDialect])) {
      const res = await t.api.get(`/posts?limit=100&q=${encodeURIComponent(q)}`).expect(200);
      found[q] = res.body.map((post: { title: string }) => post.title).sort();
    }
    const sorted = Object.fromEntries(
      Object.entries(expected[testDialect]).map(([q, titles]) => [q, [...titles].sort()]),
    );
    expect(found).toEqual(sorted);
  });
});
