import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { validationProblem } from './problem';

/** The position after the last row of a page, in (createdAt, id) order. */
export interface KeysetPosition {
  createdAt: Date;
  id: number;
}

/**
 * Opaque keyset cursors: `base64url(json).signature`. The HMAC makes them tamper-evident, so a
 * forged or edited cursor is a 400 rather than a query at an arbitrary position.
 */
export class CursorCodec {
  private readonly secret: Buffer;

  /** Without a configured secret, cursors stay valid only as long as this process runs. */
  constructor(secret?: string) {
    this.secret = secret ? Buffer.from(secret) : randomBytes(32);
  }

  encode({ createdAt, id }: KeysetPosition): string {
    const payload = Buffer.from(JSON.stringify([createdAt.toISOString(), id])).toString('base64url');
    return `${payload}.${this.sign(payload)}`;
  }

  decode(cursor: string): KeysetPosition {
    const [payload, signature, extra] = cursor.split('.');
    if (!payload || !signature || extra !== undefined || !this.verify(payload, signature)) throw invalidCursor();
    try {
      const [iso, id] = JSON.parse(Buffer.from(payload, 'base64url').toString()) as [string, number];
      const createdAt = new Date(iso);
      if (Number.isNaN(createdAt.getTime()) || !Number.isSafeInteger(id) || id < 1) throw invalidCursor();
      return { createdAt, id };
    } catch {
      throw invalidCursor();
    }
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.secret).update(payload).digest('base64url').slice(0, 22);
  }

  private verify(payload: string, signature: string): boolean {
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(signature);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }
}

function invalidCursor() {
  return validationProblem([{ field: 'cursor', messages: ['cursor is malformed or was not issued by this server'] }]);
}
