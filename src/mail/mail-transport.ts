import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTransport, type Transporter } from 'nodemailer';
import { APP_CONFIG, type AppConfig } from '../config/app.config';
import type { ClaimedMail } from './mail-outbox.repository';

/**
 * Sends one mail: over SMTP (nodemailer) when SMTP_URL is set, else as an RFC 5322 `.eml` file in
 * MAIL_DIR (nodemailer's stream transport builds the very message SMTP would have carried), so an
 * unconfigured `npm start` still lets a newcomer open the mail and follow its link.
 */
@Injectable()
export class MailTransport {
  private readonly transporter: Transporter;
  private readonly smtp: boolean;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    const { smtpUrl } = config.mail;
    this.smtp = Boolean(smtpUrl);
    this.transporter = smtpUrl
      ? // Bounded waits: a silent server fails the attempt (retried later) instead of holding the worker.
        createTransport({ url: smtpUrl, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 15_000 })
      : createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  }

  /** Where mail goes, fit for a log line: the SMTP server without its credentials, or the directory. */
  describe(): string {
    if (!this.smtp) return `written as .eml files to ${this.config.mail.dir}`;
    const url = new URL(this.config.mail.smtpUrl!);
    return `sent over SMTP to ${url.protocol}//${url.host}`;
  }

  /**
   * Hands `mail` to the SMTP server (resolves once it accepted it) or writes `<dir>/<time>-<id>.eml`.
   * The Message-ID is the same on every attempt, so a receiver can drop a duplicate of an
   * at-least-once delivery. Throws nodemailer's error (connection, timeout, refusal).
   */
  async send(mail: ClaimedMail): Promise<void> {
    const info = (await this.transporter.sendMail({
      from: this.config.mail.from,
      to: mail.recipient,
      subject: mail.subject,
      text: mail.body,
      messageId: messageIdOf(mail, this.config.mail.from),
    })) as { message?: Buffer };
    if (this.smtp) return;
    await mkdir(this.config.mail.dir, { recursive: true, mode: 0o700 });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const file = join(this.config.mail.dir, `${stamp}-${mail.id}.eml`);
    // 0600: the file holds a live token, like the database does. Written aside, then renamed: an .eml
    // file is never seen half-written (by a reader, or after a crash).
    await writeFile(`${file}.partial`, info.message!, { mode: 0o600 });
    await rename(`${file}.partial`, file);
  }
}

/** `<id.hash@domain>`: stable for one outbox row, unique across rows (the body carries a random token). */
function messageIdOf(mail: ClaimedMail, from: string): string {
  const domain = /@([^>\s]+)>?\s*$/.exec(from)?.[1] ?? 'localhost';
  const hash = createHash('sha256')
    .update(`${mail.id}\n${mail.recipient}\n${mail.subject}\n${mail.body}`)
    .digest('hex');
  return `<${mail.id}.${hash.slice(0, 24)}@${domain}>`;
}
