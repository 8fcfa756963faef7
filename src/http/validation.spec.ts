import 'reflect-metadata';
import { type ArgumentMetadata, type Type, ValidationPipe } from '@nestjs/common';
import { IsIn, ValidateIf } from 'class-validator';
import { ListCommentsQuery } from '../comments/dto/list-comments.query';
import { ListPostsQuery } from '../posts/dto/list-posts.query';
import { GetUserQuery, ListUsersQuery } from '../users/dto/user-include.query';
import { PaginationQuery } from './pagination.query';
import { createValidationPipe, VALIDATION_OPTIONS } from './validation';

const query = (metatype: Type): ArgumentMetadata => ({ type: 'query', metatype });
/** The same options, without the empty-query shortcut: what the shortcut must agree with. */
const fullPipe = () => new ValidationPipe(VALIDATION_OPTIONS);

describe('the global validation pipe, for requests without a query string', () => {
  it.each([GetUserQuery, ListUsersQuery, PaginationQuery, ListPostsQuery, ListCommentsQuery])(
    'gives %p the same instance, defaults included, the first time and every time after',
    async (metatype) => {
      const pipe = createValidationPipe();
      const expected = await fullPipe().transform({}, query(metatype));
      const first = await pipe.transform({}, query(metatype));
      const later = await pipe.transform({}, query(metatype));
      for (const value of [first, later]) {
        expect(value).toBeInstanceOf(metatype);
        expect(value).toEqual(expected);
      }
      expect(later).not.toBe(first); // a fresh object per request: a handler may change its own
    },
  );

  it('validates an empty query against a class once, not on every request', async () => {
    let validations = 0;
    class CountingQuery {
      @ValidateIf(() => ++validations < 0) // counts each run of class-validator over the class
      q?: string;
    }
    const pipe = createValidationPipe();
    for (let i = 0; i < 3; i++) await pipe.transform({}, query(CountingQuery));
    expect(validations).toBe(1);
    await pipe.transform({ q: 'x' }, query(CountingQuery));
    expect(validations).toBe(2);
  });

  it('still validates a non-empty query every time (RFC 9457 problem from the pipe)', async () => {
    const pipe = createValidationPipe();
    await pipe.transform({}, query(PaginationQuery));
    await expect(pipe.transform({ limit: '0' }, query(PaginationQuery))).rejects.toMatchObject({ status: 400 });
    await expect(pipe.transform({ limit: '5' }, query(PaginationQuery))).resolves.toMatchObject({ limit: 5 });
  });

  it('rejects an empty query every time when the class requires a parameter', async () => {
    class RequiredQuery {
      @IsIn(['a'])
      mode!: string;
    }
    const pipe = createValidationPipe();
    for (let i = 0; i < 2; i++) {
      await expect(pipe.transform({}, query(RequiredQuery))).rejects.toMatchObject({ status: 400 });
    }
  });
});
