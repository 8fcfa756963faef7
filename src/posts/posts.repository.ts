import { Inject, Injectable } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { ReadRouter } from '../database/reads/read-routing';
import type { SqlDialect } from '../database/dialects/dialect';
import { SQL_DIALECT } from '../database/dialects/sql-dialect.module';
import { inCurrentTransaction } from '../database/transactions/transactions';
import { deleteIfMatch, updateIfMatch } from '../database/transactions/versioned-writes';
import type { Preconditions } from '../http/conditional-requests';
import type { KeysetValue } from '../http/cursor';
import type { PageStart } from '../http/pagination';
import { User } from '../users/entities/user.entity';
import type { PostSort } from './dto/list-posts.query';
import { Post } from './entities/post.entity';

/** A page row as the drivers return it (portable: the author's name flat). */
type PostRow = Post & { authorName?: string };

/**
 * Characters of `q` for which SQLite's FTS5 trigram tokenizer (which folds case by SQLite's own
 * table) finds every title that JavaScript's toLowerCase (the exact check's lower(), see
 * database/sqlite.ts) matches: printable ASCII, Latin-1 to Cyrillic, Latin Extended Additional and
 * Greek Extended, but the lower cases of capitals SQLite does not fold (İ's combining dot, Ϳ, Ԩ…Ԯ and
 * the Latin Extended-D capitals of IPA letters), and İ. posts-title-fts.spec.ts checks it against
 * the bundled SQLite, every code point.
 */
export function fts5FoldsAsJs(q: string): boolean {
  return [...q].every((char) => FTS5_RANGES.test(char) && !FTS5_UNFOLDED.includes(char));
}
const FTS5_RANGES = /^[ -\u052f\u1e00-\u1fff]$/u;
const FTS5_UNFOLDED =
  '\u0130\u0307\u03f3\u0529\u052b\u052d\u052f\u025c\u0261\u026c\u026a\u029e\u0287\u029d\u0282\u0264\u019b';

/**
 * How many matches of `q` past a search window PostgreSQL reads from posts_title_trgm_idx (then sorts)
 * for the rest of a page. More means `q` is common but its matches lie further down the sort than the
 * window reached: the page then ends at the window, with a cursor (ADR 0017).
 */
export const Q_INDEX_CANDIDATES = 2000;

/**
 * The most PostgreSQL's planner may expect the read after a window to cost, run to its end, for it to
 * run: 10,000 of its cost units (1 = one page read in sequence). A `LIMIT` stops that read early only
 * when enough matches come first; how soon depends on where they lie, which the planner does not
 * know. So a plan that would cost more than this if they came last (a Seq Scan of a large table; a
 * walk of the title order; a bitmap of many matches from posts_title_trgm_idx, which the GIN index
 * builds whole) is not run, and the page ends at the window as for a common `q` (ADR 0017).
 */
export const Q_INDEX_COST_MAX = 10_000;

/**
 * Whether PostgreSQL's plan for the read after a window is bounded: `explained` is the `QUERY PLAN`
 * value (parsed or as text) of `EXPLAIN (FORMAT JSON)` of that read; the node under its `Limit` must
 * have a total cost of at most Q_INDEX_COST_MAX.
 */
export function indexReadIsBounded(explained: unknown): boolean {
  type PlanNode = { 'Node Type'?: string; 'Total Cost'?: number; Plans?: PlanNode[] };
  const document: unknown = typeof explained === 'string' ? JSON.parse(explained) : explained;
  let scan = (document as { Plan?: PlanNode }[] | undefined)?.[0]?.Plan;
  if (scan?.['Node Type'] === 'Limit') scan = scan.Plans?.[0];
  return (scan?.['Total Cost'] ?? Infinity) <= Q_INDEX_COST_MAX;
}

/** The columns a client may set on a post row. */
export type PostValues = Pick<Post, 'title' | 'body'>;

/** Which posts a page holds: `authorId` and `q` (a plain substring of the title) narrow it when set. */
export interface PostFilter {
  authorId?: number;
  q?: string;
  sort: PostSort;
}

/** The column each sort orders by (then id, in the same direction), and the index that serves it. */
const ORDER_BY: Record<PostSort, [column: 'created_at' | 'title', direction: 'ASC' | 'DESC']> = {
  createdAt: ['created_at', 'ASC'], // posts_created_at_id_idx (with authorId: posts_author_id_created_at_id_idx)
  '-createdAt': ['created_at', 'DESC'],
  title: ['title', 'ASC'], // posts_title_id_idx (with authorId: posts_author_id_title_id_idx)
  '-title': ['title', 'DESC'],
};

const POST_COLUMNS =
  'p.id, p.author_id AS "authorId", p.title, p.body, p.created_at AS "createdAt", p.updated_at AS "updatedAt", p.version';

/**
 * The newest posts of one author, on posts_author_id_created_at_id_idx: the branch of the batch
 * loader behind every nested user read (findFirstByAuthorIds, see ReadRouter.firstRows). Plain SQL for
 * speed (as CommentsRepository's FIRST_OF_POST); the aliases make each row a Post as the repository
 * would load it.
 */
const NEWEST_OF_AUTHOR = {
  postgres: `SELECT ${POST_COLUMNS} FROM posts p WHERE p.author_id >= k.v AND p.author_id <= k.v ORDER BY p.author_id DESC, p.created_at DESC, p.id DESC`,
  postgresOneKey: `SELECT ${POST_COLUMNS} FROM posts p WHERE p.author_id = $1 ORDER BY p.created_at DESC, p.id DESC`,
  portable: `SELECT ${POST_COLUMNS} FROM posts p WHERE p.author_id = ? ORDER BY p.created_at DESC, p.id DESC`,
};
/** authorId, then newest first (createdAt, id descending): POST_COLUMNS' 2nd, 5th and 1st. */
const BY_AUTHOR_NEWEST_FIRST = '2, 5 DESC, 1 DESC';

/** One dialect's statements. */
type Statements = {
  postWithAuthor: string;
  pageColumns: string;
  titleContains: (pattern: string) => string;
};

/** The statements MySQL/MariaDB and SQLite share: `?` placeholders, no arrays or JSON building. */
const PORTABLE_SQL: Statements = {
  postWithAuthor: `SELECT ${POST_COLUMNS}, a.name AS "authorName" FROM posts p JOIN users a ON a.id = p.author_id WHERE p.id = ?`,
  pageColumns: `${POST_COLUMNS}, a.name AS "authorName"`,
  // ESCAPE '\\' would be an unterminated string in MySQL (backslash escapes the quote): escape with '!'.
  titleContains: (pattern) => `LOWER(p.title) LIKE LOWER(${pattern}) ESCAPE '!'`,
};

/**
 * Which statements each dialect takes (see database/dialects/sql-dialect.ts).
 * - postWithAuthor: the post row of GET /posts/{id}, as plain SQL for the same reason: columns
 *   aliased to Post's properties, `author` built by PostgreSQL as the `{ id, name }` the query builder
 *   would select (a post always has its author: the foreign key cascades); portable: `authorName`
 *   selected flat and nested by findById.
 * - pageColumns: a list page's columns, `author` as postWithAuthor builds it.
 * - titleContains: `q` case-insensitively, LIKE's wildcards escaped (ILIKE on PostgreSQL).
 */
const SQL: Record<SqlDialect, Statements> = {
  postgres: {
    postWithAuthor: `SELECT ${POST_COLUMNS}, json_build_object('id', a.id, 'name', a.name) AS author FROM posts p JOIN users a ON a.id = p.author_id WHERE p.id = $1`,
    pageColumns: `${POST_COLUMNS}, json_build_object('id', a.id, 'name', a.name) AS author`,
    // Served by posts_title_trgm_idx (pg_trgm GIN) for a q of 3 characters or more.
    titleContains: (pattern) => `p.title ILIKE ${pattern} ESCAPE '\\'`,
  },
  mysql: PORTABLE_SQL,
  sqlite: PORTABLE_SQL,
};

/**
 * All SQL for the `posts` table. Every statement runs in the caller's transaction when one is open
 * (`txHost.tx`, see inCurrentTransaction), else on the pool; the service decides where transactions
 * begin and end. Reads go through ReadRouter: a GET's may be served by a replica.
 */
@Injectable()
export class PostsRepository {
  private readonly sql: Statements;
  private readonly mysql: boolean;

  constructor(
    @InjectRepository(Post) private readonly posts: Repository<Post>,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly reads: ReadRouter,
    @Inject(SQL_DIALECT) private readonly dialect: SqlDialect,
  ) {
    this.sql = SQL[this.dialect];
    this.mysql = this.dialect === 'mysql';
  }

  /**
   * One post by id with `author` as `{ id, name }` (one JOIN), or null; `comments` not loaded.
   * Plain SQL (POST_WITH_AUTHOR), rows shaped as the query builder would load them (a test checks).
   */
  async findById(id: number): Promise<Post | null> {
    const [row] = await this.reads.query<Post & { authorName?: string }>(this.sql.postWithAuthor, [id]);
    if (!row || this.dialect === 'postgres') return row ?? null;
    const { authorName, ...post } = row;
    return Object.assign(post, { author: { id: post.authorId, name: authorName } });
  }

  /**
   * At most `limit` posts from `start` (an offset, or strictly after a `[sort value, id]` keyset
   * position), with `author` as `{ id, name }`, in `sort` order then id in the same direction, in
   * one plain statement (its plan at 1M rows: docs/scale.md). The only join is many-to-one, so LIMIT
   * counts posts, never joined rows. `q` matches case-insensitively with LIKE's wildcards escaped;
   * PostsService sends every `q` page to findSearchPage, which bounds the rows read.
   */
  async findPage(filter: PostFilter, limit: number, start: PageStart): Promise<Post[]> {
    const statement = this.pageStatement(filter, start, limit);
    return this.shaped(await this.reads.query<PostRow>(statement.sql, statement.parameters));
  }

  /**
   * A page of posts matching `q` (case-insensitive title substring) read in bounded work, from the
   * first row or strictly after a keyset position (ADR 0017, docs/scale.md):
   * 1. walk the sort's index over at most `scanRows` posts after `after`, keeping those that match —
   *    one statement; enough when matches are common (an unselective `q` costs O(page));
   * 2. when that window held fewer than `wanted` matches and the list goes on past it: with a title
   *    index for this `q` (PostgreSQL pg_trgm for 3+ characters, SQLite FTS5 trigram for 3+
   *    characters of the scripts its case folding agrees on), the rest of the page from the index,
   *    after the window (PostgreSQL: from at most Q_INDEX_CANDIDATES matches; more, and the page
   *    ends at the window as below); without one (MariaDB/MySQL, a shorter `q`), the page ends at the
   *    window: fewer than `wanted` posts (maybe none) and `resumeAfter`, the window's last position.
   * Returns up to `wanted` posts (the caller asks for one past its page, to know another exists)
   * and, when the page ended at the window, `resumeAfter` (`[sort value, id]`, the next page's start).
   */
  async findSearchPage(
    filter: PostFilter & { q: string },
    wanted: number,
    after: KeysetValue[] | undefined,
    scanRows: number,
  ): Promise<{ rows: Post[]; resumeAfter?: KeysetValue[] }> {
    const [column] = ORDER_BY[filter.sort];
    const start: PageStart = after ? { after } : { offset: 0 };
    const window = this.pageStatement(filter, start, wanted, scanRows);
    const rows = this.shaped(await this.reads.query<PostRow>(window.sql, window.parameters));
    if (rows.length >= wanted) return { rows };
    const end = this.pageStatement({ ...filter, q: undefined }, start, 1, undefined, scanRows - 1, true);
    const [last] = await this.reads.query<PostRow>(end.sql, end.parameters);
    if (!last) return { rows }; // the list ends inside the window: this is the last page
    const resumeAfter: KeysetValue[] = [column === 'title' ? last.title : last.createdAt, last.id];
    const viaIndex = this.titleIndexServes(filter.q);
    if (!viaIndex) return { rows, resumeAfter };
    if (viaIndex === 'trgm') {
      // Planned first: a read the planner expects to cost more than Q_INDEX_COST_MAX run to its end
      // is not run, and the page ends at the window (ADR 0017).
      const plan = this.pageStatement(filter, { after: resumeAfter }, 0, undefined, 0, false, viaIndex, true);
      const [explained] = await this.reads.query<{ 'QUERY PLAN': unknown }>(plan.sql, plan.parameters);
      if (!indexReadIsBounded(explained?.['QUERY PLAN'])) return { rows, resumeAfter };
    }
    const rest = this.pageStatement(
      filter,
      { after: resumeAfter },
      wanted - rows.length,
      undefined,
      0,
      false,
      viaIndex,
    );
    const found = await this.reads.query<PostRow & { candidates?: number }>(rest.sql, rest.parameters);
    // PostgreSQL read at most Q_INDEX_CANDIDATES matches past the window: more means q is common and
    // its matches lie further down the sort; sorting or walking to them is unbounded, so the page ends
    // at the window, as without an index (ADR 0017).
    if (found.length > 0 && Number(found[0].candidates) > Q_INDEX_CANDIDATES) return { rows, resumeAfter };
    for (const row of found) delete row.candidates;
    return { rows: rows.concat(this.shaped(found)) };
  }

  /**
   * Which index serves `q` on this database, if any: PostgreSQL's pg_trgm GIN and SQLite's FTS5
   * trigram table need 3 characters; SQLite's only for a `q` whose case it folds as the exact check
   * does (fts5FoldsAsJs), else its candidates could miss a match.
   */
  private titleIndexServes(q: string): 'trgm' | 'fts5' | undefined {
    const characters = [...q];
    if (characters.length < 3) return undefined;
    if (this.dialect === 'postgres') return 'trgm';
    if (this.mysql) return undefined;
    return fts5FoldsAsJs(q) ? 'fts5' : undefined;
  }

  /**
   * One page statement. `window`: walk at most that many rows of the list (sort order, filters but
   * `q`) and keep those matching `q`. `skip` + `positionOnly`: the position of the row `skip` rows
   * into the list (the window's last row). `index`: the rest of a page from at most
   * Q_INDEX_CANDIDATES + 1 matches read from that title index (`planOnly`: only `EXPLAIN (FORMAT
   * JSON)` of that read).
   */
  private pageStatement(
    { authorId, q, sort }: PostFilter,
    start: PageStart,
    limit: number,
    window?: number,
    skip = 0,
    positionOnly = false,
    index?: 'trgm' | 'fts5',
    planOnly = false,
  ): { sql: string; parameters: unknown[] } {
    const [column, direction] = ORDER_BY[sort];
    const parameters: unknown[] = [];
    // Placeholders are bound as the text is written: portable `?` take their values in text order.
    const bind = (value: unknown) => {
      parameters.push(value);
      return this.dialect === 'postgres' ? `$${parameters.length}` : '?';
    };
    const listConditions = (): string[] => {
      const where: string[] = [];
      if (authorId !== undefined) where.push(`p.author_id = ${bind(authorId)}`);
      if ('after' in start) {
        const [value, id] = start.after;
        const op = direction === 'ASC' ? '>' : '<';
        // Portable spells the row comparison out, which MySQL's optimizer turns into a range on the index.
        where.push(
          this.dialect === 'postgres'
            ? `(p.${column}, p.id) ${op} (${bind(value)}, ${bind(id)})`
            : `(p.${column} ${op} ${bind(value)} OR (p.${column} = ${bind(value)} AND p.id ${op} ${bind(id)}))`,
        );
      }
      return where;
    };
    const matchConditions = (): string[] => {
      if (!q) return [];
      const matches: string[] = [];
      if (index === 'fts5') matches.push(`posts_title_fts MATCH ${bind(`"${q.replaceAll('"', '""')}"`)}`);
      const pattern = bind(`%${escapeLike(q, this.dialect)}%`);
      // MySQL's collation would also fold accents (ü = u); compared binary after LOWER(), it matches as PostgreSQL's ILIKE.
      matches.push(
        this.mysql
          ? `LOWER(p.title) COLLATE utf8mb4_bin LIKE LOWER(${pattern}) ESCAPE '!'`
          : this.sql.titleContains(pattern),
      );
      return matches;
    };
    const whereOf = (conditions: string[]) => (conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '');
    const order = ` ORDER BY p.${column} ${direction}, p.id ${direction}`;
    const offset = skip || ('offset' in start ? start.offset : 0);
    if (positionOnly) {
      const sql = `SELECT p.id, p.title, p.created_at AS "createdAt" FROM posts p${whereOf(listConditions())}${order}`;
      return { sql: `${sql} LIMIT ${bind(limit)} OFFSET ${bind(offset)}`, parameters };
    }
    if (index) {
      // The matches past the start from the title index, at most Q_INDEX_CANDIDATES + 1 of them
      // (MATERIALIZED: the LIMIT applies before any ordering, so the planner cannot walk the sort's
      // index discarding rows), sorted here; `candidates` says whether that was all of them. SQLite:
      // CROSS JOIN reads the FTS5 trigram table first (candidates in rowid order), then their posts by id.
      const source =
        index === 'fts5' ? 'posts_title_fts CROSS JOIN posts p ON p.id = posts_title_fts.rowid' : 'posts p';
      const candidates = `SELECT p.id, p.${column} AS k FROM ${source}${whereOf([...matchConditions(), ...listConditions()])} LIMIT ${bind(Q_INDEX_CANDIDATES + 1)}`;
      if (planOnly) return { sql: `EXPLAIN (FORMAT JSON) ${candidates}`, parameters };
      const top = `SELECT id FROM m ORDER BY k ${direction}, id ${direction} LIMIT ${bind(limit)}`;
      const count = this.dialect === 'postgres' ? '(SELECT count(*) FROM m)::int' : '(SELECT count(*) FROM m)';
      const sql =
        `WITH m AS MATERIALIZED (${candidates}) SELECT ${this.sql.pageColumns}, ${count} AS candidates ` +
        `FROM (${top}) AS top JOIN posts p ON p.id = top.id JOIN users a ON a.id = p.author_id${order}`;
      return { sql, parameters };
    }
    let from = 'posts p';
    let conditions: string[];
    if (window !== undefined) {
      // The window: the list's next `window` rows by its own index, then the match test on those only.
      from = `(SELECT * FROM posts p${whereOf(listConditions())}${order} LIMIT ${bind(window)}) p`;
      conditions = matchConditions();
    } else {
      conditions = matchConditions();
      conditions.push(...listConditions());
    }
    const select = `SELECT ${this.sql.pageColumns} FROM ${from} JOIN users a ON a.id = p.author_id`;
    let sql = `${select}${whereOf(conditions)}${order} LIMIT ${bind(limit)}`;
    if (window === undefined && offset > 0) sql += ` OFFSET ${bind(offset)}`;
    return { sql, parameters };
  }

  /** Rows as Posts: portable rows carry `authorName`, nested here as PostgreSQL's json_build_object does. */
  private shaped(rows: PostRow[]): Post[] {
    if (this.dialect === 'postgres') return rows;
    return rows.map(({ authorName, ...post }) =>
      Object.assign(post, { author: { id: post.authorId, name: authorName } }),
    );
  }

  /**
   * The newest `limit` posts of each given author (created_at, id descending), grouped by author:
   * each author's read stops at `limit`, however many posts they wrote. PostgreSQL: one statement
   * (`LATERAL`, or a plain one for a single author); portable: one per 250 authors (see
   * ReadRouter.firstRows). Rows are Posts without `author` or `comments`. `[]` sends nothing.
   */
  findFirstByAuthorIds(authorIds: number[], limit: number): Promise<Post[]> {
    return this.reads.firstRows<Post>(authorIds, limit, NEWEST_OF_AUTHOR, BY_AUTHOR_NEWEST_FIRST);
  }

  /** Whether the user a post list belongs to exists (`SELECT 1 FROM users … LIMIT 1`): 404 or an empty page. */
  authorExists(authorId: number): Promise<boolean> {
    return this.reads.read((db) => db.existsBy(User, { id: authorId }));
  }

  /**
   * Inserts the posts of one author, in order (`INSERT … RETURNING id, created_at, updated_at,
   * version`); returns them as stored. A missing author fails on posts_author_id_fkey (404).
   */
  insertMany(authorId: number, posts: PostValues[]): Promise<Post[]> {
    const repository = inCurrentTransaction(this.txHost, this.posts);
    return repository.save(posts.map(({ title, body }) => repository.create({ title, body, authorId })));
  }

  /** Version-checked `UPDATE posts` (see updateIfMatch): 404/412 when no row matched. */
  update(id: number, values: Partial<PostValues>, conditions: Preconditions | undefined): Promise<void> {
    return updateIfMatch(inCurrentTransaction(this.txHost, this.posts), id, values, conditions);
  }

  /**
   * Version-checked `DELETE FROM posts` (404/412 as deleteIfMatch); its comments go by ON DELETE
   * CASCADE, locked first in id order (`SELECT … ORDER BY id FOR UPDATE`), as UsersRepository.delete
   * does, so concurrent cascades queue instead of deadlocking. Must run inside a transaction.
   */
  async delete(id: number, conditions: Preconditions | undefined): Promise<void> {
    const posts = inCurrentTransaction(this.txHost, this.posts);
    if (this.dialect === 'postgres') {
      await posts.query('SELECT 1 FROM comments WHERE post_id = $1 ORDER BY id FOR UPDATE', [id]);
    } else if (this.dialect === 'mysql') {
      // The post first, as a comment insert locks it first (the keyset trigger): they queue, never deadlock.
      // SQLite takes no row locks: its single writer already serializes these transactions.
      await posts.query('SELECT 1 FROM posts WHERE id = ? FOR UPDATE', [id]);
      await posts.query('SELECT 1 FROM comments WHERE post_id = ? ORDER BY id FOR UPDATE', [id]);
    }
    await deleteIfMatch(posts, id, conditions);
  }
}

/** `q` is a plain substring: LIKE's wildcards in it match themselves (escaped with titleContains' escape character). */
function escapeLike(text: string, dialect: SqlDialect): string {
  const escape = dialect === 'postgres' ? '\\' : '!';
  return text.replace(dialect === 'postgres' ? /[\\%_]/g : /[!%_]/g, (char) => `${escape}${char}`);
}
