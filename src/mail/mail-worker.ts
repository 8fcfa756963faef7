import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import { mailCounters } from './mail-metrics';
import { type ClaimedMail, MailOutboxRepository } from './mail-outbox.repository';
import { MailTransport } from './mail-transport';

/** Mails claimed per round. */
const BATCH = 5;
/**
 * How long a claim holds its mails: longer than a batch can take (each send is bounded by the
 * transport's timeouts, ~35 s at worst), short enough that a crashed worker's mail goes out soon.
 */
const LEASE_MS = 3 * 60_000;
/** Retries wait at most this long, however many attempts failed. */
const MAX_RETRY_DELAY_MS = 60 * 60_000;
/** On shutdown, how long to wait for a send under way; an unfinished one goes out again after its lease. */
const STOP_WAIT_MS = 5_000;

/**
 * Delivers the mail outbox: claims due mails (MailOutboxRepository.claim), sends each
 * (MailTransport), deletes it once accepted. A failed attempt is retried with exponential backoff
 * and jitter (MAIL_RETRY_BASE_MS × 2^(attempt−1), at most an hour) until MAIL_MAX_ATTEMPTS, then
 * given up (`failed_at`). Delivery is at-least-once: a worker that dies between the server's
 * acceptance and the DELETE leaves the mail to be sent again once its lease ends.
 *
 * Runs in every instance with MAIL_WORKER_ENABLED (the claims keep them apart), outside any request:
 * a commit that queued mail wakes it (MailOutbox), otherwise it looks every MAIL_POLL_INTERVAL_MS.
 */
@Injectable()
export class MailWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(MailWorker.name);
  private running?: Promise<void>;
  private stopping = false;
  private woken = false;
  private wakeUp?: () => void;

  constructor(
    private readonly outbox: MailOutboxRepository,
    private readonly transport: MailTransport,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    const { workerEnabled, smtpUrl } = this.config.mail;
    this.logger.log(
      workerEnabled
        ? `Mail is ${this.transport.describe()}${smtpUrl ? '' : ' (set SMTP_URL to send it)'}`
        : 'Mail is queued only (MAIL_WORKER_ENABLED=false): another instance delivers it',
    );
    if (this.config.env === 'production' && this.config.mail.publicUrl.startsWith('http://localhost')) {
      this.logger.warn('PUBLIC_URL is not set: links in mails point to localhost');
    }
    if (workerEnabled) this.running = this.loop();
  }

  /** Look for due mail now rather than at the next poll (a transaction just queued some). */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    this.wake();
    if (this.running) await Promise.race([this.running, sleep(STOP_WAIT_MS, undefined, { ref: false })]);
  }

  /**
   * One round: claims up to BATCH due mails and tries each. Returns how many it claimed. Public for
   * tests and operators' scripts; the loop calls it.
   */
  async deliverDue(): Promise<number> {
    const mails = await this.outbox.claim(BATCH, LEASE_MS);
    for (const [index, mail] of mails.entries()) {
      if (this.stopping) {
        await this.outbox.release(mails.slice(index).map((unsent) => unsent.id));
        break;
      }
      await this.deliver(mail);
    }
    return mails.length;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let claimed = 0;
      try {
        claimed = await this.deliverDue();
      } catch (error) {
        // The database is away or busy: the next round tries again; nothing is lost (the rows stay).
        this.logger.warn(`Mail worker could not read the outbox: ${(error as Error).message}`);
      }
      if (claimed < BATCH) await this.idle(this.config.mail.pollIntervalMs);
    }
  }

  private idle(ms: number): Promise<void> {
    if (this.woken || this.stopping) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        this.woken = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  private async deliver(mail: ClaimedMail): Promise<void> {
    try {
      await this.transport.send(mail);
    } catch (error) {
      // The SMTP server's answer or the socket error; never the message (it holds a token).
      const reason = reasonOf(error);
      if (mail.attempts >= this.config.mail.maxAttempts) {
        await this.outbox.giveUp(mail.id, reason);
        mailCounters.failed.inc();
        this.logger.error(`Mail ${mail.id} given up after ${mail.attempts} attempts: ${reason}`);
        return;
      }
      const delay = this.retryDelay(mail.attempts);
      await this.outbox.retryLater(mail.id, delay, reason);
      mailCounters.retried.inc();
      this.logger.warn(`Mail ${mail.id} not delivered (attempt ${mail.attempts}), retrying in ${delay} ms: ${reason}`);
      return;
    }
    await this.outbox.delivered(mail.id);
    mailCounters.sent.inc();
    this.logger.debug?.(`Mail ${mail.id} delivered`);
  }

  /** Exponential backoff with jitter: between half and all of base × 2^(attempt−1), capped. */
  private retryDelay(attempt: number): number {
    const ceiling = Math.min(MAX_RETRY_DELAY_MS, this.config.mail.retryBaseMs * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }
}

/** One line on why a send failed: nodemailer's code and the server's response, or the message. */
function reasonOf(error: unknown): string {
  const { code, response, message } = error as { code?: string; response?: string; message?: string };
  return [code, response ?? message].filter(Boolean).join(': ') || 'unknown error';
}
