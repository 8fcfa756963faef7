import { Counter } from 'prom-client';
import { registry } from '../metrics/metrics';

/**
 * The mail outbox's counters (Prometheus, in the service's one registry). queued − sent − failed is
 * what is still waiting; `retried` counts failed attempts that will be tried again.
 */
export const mailCounters = {
  queued: new Counter({
    name: 'mail_queued_total',
    help: 'Mails written to the outbox by a committed transaction',
    registers: [registry],
  }),
  sent: new Counter({
    name: 'mail_sent_total',
    help: 'Mails the SMTP server (or the .eml directory) accepted',
    registers: [registry],
  }),
  retried: new Counter({
    name: 'mail_retried_total',
    help: 'Delivery attempts that failed and were scheduled again (with backoff)',
    registers: [registry],
  }),
  failed: new Counter({
    name: 'mail_failed_total',
    help: 'Mails given up after MAIL_MAX_ATTEMPTS failed deliveries (left in the outbox with failed_at set)',
    registers: [registry],
  }),
};
