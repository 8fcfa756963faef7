import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { type SqlDialect, dialectOf, loadDriver } from '../../src/database/dialects/dialect';

/** What the app's pools name their PostgreSQL connections (data-source.options.ts). */
const APP_NAME = 'nest-typeorm-users';

/** A connection of its own to the test database that ends the app's connections to it. */
export interface ConnectionKiller {
  /** Ends every connection the app holds to this database now; returns how many it ended. */
  killAll(): Promise<number>;
  close(): Promise<void>;
}

/**
 * PostgreSQL: `pg_terminate_backend` on the backends named like the app's in this database (as a
 * failover, a restart or an idle-session killer does). MariaDB/MySQL: `KILL CONNECTION` on every
 * other connection to this database. Other databases on the same server are never touched.
 */
export async function connectionKiller(url: string): Promise<ConnectionKiller> {
  const dialect: SqlDialect = dialectOf(url);
  if (dialect === 'postgres') {
    const client = new Client({ connectionString: url, application_name: 'fault-injection' });
    client.on('error', () => undefined);
    await client.connect();
    return {
      async killAll() {
        const { rows } = await client.query<{ n: number }>(
          `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1`,
          [APP_NAME],
        );
        return rows[0].n;
      },
      close: () => client.end(),
    };
  }
  if (dialect === 'mysql') {
    const mysql = loadDriver<{
      createConnection(options: object): {
        promise(): {
          query<T>(sql: string, values?: unknown[]): Promise<[T, unknown]>;
          end(): Promise<void>;
        };
        on(event: 'error', listener: () => void): void;
      };
    }>('mysql');
    const raw = mysql.createConnection({ uri: url.replace(/^mariadb:/i, 'mysql:') });
    raw.on('error', () => undefined);
    const connection = raw.promise();
    return {
      async killAll() {
        const [rows] = await connection.query<{ id: number }[]>(
          'SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()',
        );
        let killed = 0;
        for (const { id } of rows) {
          // Gone already (it ended on its own meanwhile): not an error.
          killed += await connection.query(`KILL CONNECTION ${Number(id)}`).then(
            () => 1,
            () => 0,
          );
        }
        return killed;
      },
      close: () => connection.end(),
    };
  }
  throw new Error(`connectionKiller: ${dialect} has no server connections to end`);
}

/**
 * Ends the app's connections every `everyMs` until stopped; `stop()` resolves to how many rounds ran
 * and how many connections were ended in all.
 */
export function killEvery(
  killer: ConnectionKiller,
  everyMs: number,
): { stop(): Promise<{ rounds: number; killed: number }> } {
  let running = true;
  let rounds = 0;
  let killed = 0;
  const loop = (async () => {
    while (running) {
      killed += await killer.killAll();
      rounds++;
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { rounds, killed };
    },
  };
}
