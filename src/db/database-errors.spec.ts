import { QueryFailedError } from 'typeorm';
import { translateDatabaseError } from './database-errors';

const queryError = (driverError: object) =>
  new QueryFailedError('SELECT 1', [], Object.assign(new Error('driver'), driverError));

describe('translateDatabaseError', () => {
  it('turns the unique email violation into 409 naming the field', () => {
    const problem = translateDatabaseError(queryError({ code: '23505', constraint: 'users_email_lower_key' }));
    expect(problem?.getStatus()).toBe(409);
    expect(problem?.extras.errors).toEqual([{ field: 'email', messages: ['A user with this email already exists'] }]);
  });

  it('turns a missing referenced author into 422 naming authorId', () => {
    const problem = translateDatabaseError(queryError({ code: '23503', constraint: 'comments_author_id_fkey' }));
    expect(problem?.getStatus()).toBe(422);
    expect(problem?.extras.errors?.[0].field).toBe('authorId');
  });

  it.each([
    [{ code: '57014' }, 503], // statement timeout
    [{ code: '40001' }, 409], // serialization failure
    [{ code: '22P02' }, 400], // invalid text representation
    [{ code: '23505', constraint: 'unknown' }, 409],
  ])('maps %j to %i', (driverError, status) => {
    expect(translateDatabaseError(queryError(driverError))?.getStatus()).toBe(status);
  });

  it('treats pool exhaustion and refused connections as 503 with Retry-After', () => {
    for (const error of [
      new Error('timeout exceeded when trying to connect'),
      Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
    ]) {
      const problem = translateDatabaseError(error);
      expect(problem?.getStatus()).toBe(503);
      expect(problem?.extras.retryAfterSeconds).toBeGreaterThan(0);
    }
  });

  it('leaves unrelated errors alone', () => {
    expect(translateDatabaseError(new TypeError('x is undefined'))).toBeUndefined();
    expect(translateDatabaseError('boom')).toBeUndefined();
  });
});
