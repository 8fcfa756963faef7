import { SMTPServer } from 'smtp-server';
import { findFreePort } from '../../src/database/dialects/embedded-postgres';

/** A mail as the test SMTP server received it, its text body decoded. */
export interface ReceivedMail {
  /** RCPT TO addresses. */
  to: string[];
  subject: string;
  messageId: string;
  /** The plain-text body (quoted-printable undone). */
  text: string;
  /** The whole message as it came over SMTP (RFC 5322). */
  raw: string;
}

/**
 * A real SMTP server for the tests (the `smtp-server` package), on loopback: it accepts every mail
 * (no TLS, no auth, as a local relay would) and keeps what it received. `stop()` closes it and
 * `start()` listens again on the same port: an SMTP outage and its end.
 */
export class TestSmtpServer {
  readonly received: ReceivedMail[] = [];
  private server?: SMTPServer;

  private constructor(readonly port: number) {}

  /** A server listening on a free loopback port, or (`listening: false`) only the port, for start() later. */
  static async create({ listening = true } = {}): Promise<TestSmtpServer> {
    const smtp = new TestSmtpServer(await findFreePort());
    if (listening) await smtp.start();
    return smtp;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          this.received.push({ to: session.envelope.rcptTo.map((rcpt) => rcpt.address), ...parse(raw), raw });
          callback();
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The mails to `address` so far. */
  to(address: string): ReceivedMail[] {
    return this.received.filter((mail) => mail.to.includes(address.toLowerCase()) || mail.to.includes(address));
  }

  /** Waits (up to `timeoutMs`, generous) until `count` mails to `address` arrived, and returns them. */
  async waitFor(address: string, count = 1, timeoutMs = 60_000): Promise<ReceivedMail[]> {
    for (const started = Date.now(); ;) {
      const mails = this.to(address);
      if (mails.length >= count) return mails;
      if (Date.now() - started > timeoutMs) {
        throw new Error(`${mails.length} of ${count} mails to ${address} arrived in ${timeoutMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Subject, Message-ID and the decoded text of a single-part text/plain message (what the app sends). */
function parse(raw: string): Pick<ReceivedMail, 'subject' | 'messageId' | 'text'> {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const body = raw.slice(split + 4);
  const header = (name: string) => new RegExp(`^${name}: (.*)$`, 'im').exec(head)?.[1] ?? '';
  const quotedPrintable = /quoted-printable/i.test(header('Content-Transfer-Encoding'));
  const text = quotedPrintable
    ? Buffer.from(
        body
          .replace(/=\r?\n/g, '')
          .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
        'latin1',
      ).toString('utf8')
    : body;
  return { subject: header('Subject'), messageId: header('Message-ID'), text: text.replace(/\r\n/g, '\n') };
}

/** The token after `#token=` in a mail's link. */
export function tokenIn(mail: { text: string }): string {
  const match = /#token=([\w-]{43})/.exec(mail.text);
  if (!match) throw new Error(`no token in:\n${mail.text}`);
  return match[1];
}
