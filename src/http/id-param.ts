import {
  type ArgumentMetadata,
  createParamDecorator,
  type ExecutionContext,
  Injectable,
  type PipeTransform,
} from '@nestjs/common';
import { ApiParam } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { validationProblem } from './problem';

const MAX_ID = 2_147_483_647; // PostgreSQL integer

/** Path ids: positive integers that fit the column, so no malformed id ever reaches SQL. */
@Injectable()
export class ParseIdPipe implements PipeTransform<string, number> {
  transform(value: string, metadata: ArgumentMetadata): number {
    const id = /^[1-9]\d{0,9}$/.test(value) ? Number(value) : NaN;
    if (!(id <= MAX_ID)) {
      throw validationProblem([
        { field: metadata.data ?? 'id', messages: [`must be a positive integer up to ${MAX_ID}`] },
      ]);
    }
    return id;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Path ids that are UUIDs (`@Param('id', ParseUuidPipe)`): anything else is a 400 naming the
 * parameter, as for integer ids, rather than a 404 for a resource no id of that shape can name.
 */
@Injectable()
export class ParseUuidPipe implements PipeTransform<string, string> {
  transform(value: string, metadata: ArgumentMetadata): string {
    if (UUID.test(value)) return value;
    throw validationProblem([{ field: metadata.data ?? 'id', messages: ['must be a UUID (RFC 9562 §4)'] }]);
  }
}

// A custom decorator rather than @Param(): the global ValidationPipe would coerce the raw string to
// a number first (so `1e3` would become 1000 and pass); custom decorators skip it.
const rawPathParam = createParamDecorator(
  (name: string, ctx: ExecutionContext) =>
    ctx.switchToHttp().getRequest<FastifyRequest<{ Params: Record<string, string> }>>().params[name],
);

/** `@IdParam() id: number` — the validated numeric id from the path, documented in OpenAPI. */
export function IdParam(name = 'id'): ParameterDecorator {
  return (target, method, index) => {
    rawPathParam(name, ParseIdPipe)(target, method, index);
    if (method === undefined) return;
    const describe = ApiParam({
      name,
      schema: { type: 'integer', minimum: 1, maximum: MAX_ID },
      description: 'Positive integer id',
    });
    describe(target, method, Object.getOwnPropertyDescriptor(target, method)!);
  };
}
