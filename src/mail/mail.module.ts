import { Module } from '@nestjs/common';
import { MailOutbox } from './mail-outbox';
import { MailOutboxRepository } from './mail-outbox.repository';
import { MailTransport } from './mail-transport';
import { MailWorker } from './mail-worker';

/**
 * Outgoing mail: the outbox (MailOutbox.queue, in the caller's transaction) and the worker that
 * delivers it over SMTP or into .eml files (docs/accounts.md).
 */
@Module({
  providers: [MailOutbox, MailOutboxRepository, MailTransport, MailWorker],
  exports: [MailOutbox, MailWorker],
})
export class MailModule {}
