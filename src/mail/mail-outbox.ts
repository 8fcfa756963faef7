import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import {
  DataSource,
  type EntitySubscriberInterface,
  type QueryRunner,
  type TransactionCommitEvent,
  type TransactionRollbackEvent,
} from 'typeorm';
import { mailCounters } from './mail-metrics';
import { MailOutboxRepository, type MailToSend } from './mail-outbox.repository';
import { MailWorker } from './mail-worker';

/** Mails a transaction queued, kept on its QueryRunner until it commits or rolls back. */
const QUEUED = 'queuedMails';

/**
 * How features send mail: `queue()` writes it to the outbox in the caller's transaction, so it goes
 * out only if that transaction commits, and never makes the request wait for SMTP. When the
 * transaction commits (a TypeORM subscriber sees it), the mail is counted and the worker woken.
 */
@Injectable()
export class MailOutbox implements EntitySubscriberInterface, OnModuleInit, OnModuleDestroy {
  constructor(
    private readonly outbox: MailOutboxRepository,
    private readonly worker: MailWorker,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
    private readonly dataSource: DataSource,
  ) {}

  onModuleInit(): void {
    this.dataSource.subscribers.push(this);
  }

  onModuleDestroy(): void {
    const subscribers = this.dataSource.subscribers;
    if (subscribers.includes(this)) subscribers.splice(subscribers.indexOf(this), 1);
  }

  /** Queues `mail` in the current transaction (or on its own when there is none). */
  async queue(mail: MailToSend): Promise<void> {
    await this.outbox.insert(mail);
    const runner = this.txHost.isTransactionActive() ? this.txHost.tx.queryRunner : undefined;
    if (runner) runner.data = { ...runner.data, [QUEUED]: queuedOn(runner) + 1 };
    else this.committed(1);
  }

  afterTransactionCommit({ queryRunner }: TransactionCommitEvent): void {
    const queued = queuedOn(queryRunner);
    if (queued === 0) return;
    queryRunner.data[QUEUED] = 0;
    this.committed(queued);
  }

  afterTransactionRollback({ queryRunner }: TransactionRollbackEvent): void {
    if (queuedOn(queryRunner) > 0) queryRunner.data[QUEUED] = 0;
  }

  private committed(count: number): void {
    mailCounters.queued.inc(count);
    this.worker.wake();
  }
}

function queuedOn(runner: QueryRunner): number {
  return (runner.data as Record<string, number> | undefined)?.[QUEUED] ?? 0;
}
