import { Logger as NestLogger } from '@nestjs/common';
import type { Logger as TypeOrmLogger } from 'typeorm';

/**
 * TypeORM's log lines through Nest's logger (pino in the app), so they carry the request id of the
 * request that ran them. Statements only with DB_LOGGING (the guide's echo, docs/from-sqlalchemy.md); slow ones always, as
 * warnings; failed ones are left to the problem filter, which logs the server errors among them.
 */
export class DatabaseLogger implements TypeOrmLogger {
  private readonly logger = new NestLogger('Database');

  constructor(private readonly echo: boolean) {}

  logQuery(query: string, parameters?: unknown[]): void {
    if (this.echo) this.logger.log(`${query}${parameters?.length ? ` -- ${JSON.stringify(parameters)}` : ''}`);
  }

  logQueryError(): void {}

  logQuerySlow(time: number, query: string): void {
    this.logger.warn(`slow query (${time} ms): ${query}`);
  }

  /**
   * A migration applied or reverted, and `migration:show`'s listing, are news; TypeORM's counting
   * around them ("2 migrations were found in the source code.") is debug.
   */
  logSchemaBuild(message: string): void {
    const changed = /^Migration (\S+) has been (\(fake\) )?(executed|reverted) successfully/.exec(message);
    if (changed) this.logger.log(`${changed[3] === 'executed' ? 'Applied' : 'Reverted'} migration ${changed[1]}`);
    else if (/^\[[X ]\] /.test(message)) this.logger.log(message);
    else this.logger.debug(message);
  }

  logMigration(message: string): void {
    this.logger.log(message);
  }

  /** TypeORM's chatter (which files it found, …) is debug; its warnings stay warnings. */
  log(level: 'log' | 'info' | 'warn', message: unknown): void {
    if (level === 'warn') this.logger.warn(message);
    else this.logger.debug(message);
  }
}
