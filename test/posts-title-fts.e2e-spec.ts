import { loadDriver } from '../src/database/dialects/dialect';
import { fts5FoldsAsJs } from '../src/posts/posts.repository';
import { describeOn } from './setup/dialect';

/** The part of better-sqlite3 this test uses (the driver is optional and ships no types). */
interface Statement {
  run(...values: unknown[]): unknown;
  all(...values: unknown[]): { rowid: number }[];
}
interface SqliteDatabase {
  exec(sql: string): void;
  prepare(sql: string): Statement;
  transaction(fn: () => void): () => void;
  close(): void;
}

/**
 * fts5FoldsAsJs must only admit a `q` whose FTS5 trigram candidates hold every title the exact check
 * (JavaScript's toLowerCase, as database/sqlite.ts registers lower()) matches: for every capital
 * letter, a title holding it must be found by its lower case when that lower case is admitted.
 */
describeOn(['sqlite'], 'SQLite-only: its FTS5 trigram index (better-sqlite3 is installed for that run)')(
  'posts_title_fts case folding (SQLite FTS5 trigram vs lower())',
  () => {
    it('finds every capital by its JavaScript lower case, for each q character fts5FoldsAsJs admits', () => {
      const Database = loadDriver<new (path: string) => SqliteDatabase>('sqlite');
      const db = new Database(':memory:');
      try {
        db.exec(`CREATE VIRTUAL TABLE f USING fts5(title, tokenize='trigram')`);
        const capitals: string[] = [];
        for (let code = 0x41; code < 0x20000; code++) {
          if (code >= 0xd800 && code < 0xe000) continue;
          const char = String.fromCodePoint(code);
          if (char.toLowerCase() !== char && fts5FoldsAsJs(char.toLowerCase())) capitals.push(char);
        }
        const insert = db.prepare('INSERT INTO f (rowid, title) VALUES (?, ?)');
        db.transaction(() => capitals.forEach((char) => insert.run(char.codePointAt(0), `a${char}b`)))();
        const search = db.prepare('SELECT rowid FROM f WHERE f MATCH ?');
        const missed = capitals.filter((char) => {
          const q = `a${char.toLowerCase()}b`.replaceAll('"', '""');
          return !search.all(`"${q}"`).some(({ rowid }) => rowid === char.codePointAt(0));
        });
        expect(missed).toEqual([]);
        expect(capitals.length).toBeGreaterThan(500); // Latin, Greek and Cyrillic capitals are admitted
      } finally {
        db.close();
      }
    });

    it('refuses İ, whose lower case is i and a combining dot', () => {
      expect(fts5FoldsAsJs('İst')).toBe(false);
      expect(fts5FoldsAsJs('i\u0307st')).toBe(false);
      expect(fts5FoldsAsJs('Über école')).toBe(true);
      expect(fts5FoldsAsJs('ᲐᲑᲒ')).toBe(false);
    });
  },
);
