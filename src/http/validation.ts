import {
  applyDecorators,
  type ArgumentMetadata,
  type CanActivate,
  type ExecutionContext,
  HttpStatus,
  UseGuards,
  ValidationPipe,
  type ValidationError,
  type ValidationPipeOptions,
} from '@nestjs/common';
import { Transform } from 'class-transformer';
import { IsInt, ValidateIf } from 'class-validator';
import { type FieldError, ProblemException, validationProblem } from './problem';

/**
 * class-validator constraints that check what kind of value a field holds, most basic first. When one
 * fails, every other check on the field (length, format, range, its nested fields) fails only as a
 * consequence: the type is the one fault to report.
 */
const TYPE_CONSTRAINTS = ['isString', 'isInt', 'isNumber', 'isBoolean', 'isArray', 'isObject', 'nestedValidation'];

/**
 * Flattens class-validator's nested errors into `{ field: 'profile.bio', messages }`, one message per
 * fault: a wrong type is reported alone (not also "too long" and "not an email"), and the fields
 * nested in a value of the wrong type are not reported at all.
 */
export function toFieldErrors(errors: ValidationError[], prefix = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    const constraints = error.constraints ?? {};
    const typeFault = TYPE_CONSTRAINTS.find((name) => name in constraints);
    if (typeFault) return [{ field, messages: [constraints[typeFault]] }];
    const own = error.constraints ? [{ field, messages: Object.values(constraints) }] : [];
    return [...own, ...toFieldErrors(error.children ?? [], field)];
  });
}

/**
 * Nest's ValidationPipe, with one shortcut: a request without a query string (the common `GET
 * /users/1`) is validated against a query class only the first time. An empty query is valid for a
 * class or it is not, whatever the request; once it passed, the answer is what the pipe returned then,
 * `new QueryClass()` (class-transformer builds exactly that from `{}`: the defaults, nothing else), so
 * class-transformer and class-validator no longer run for it on every request. Any other value, and
 * an empty query the class rejects, goes through the full pipe each time.
 */
export class AppValidationPipe extends ValidationPipe {
  private readonly emptyQueryPasses = new WeakSet<object>();

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const { type, metatype } = metadata;
    // Nest would validate a null or absent body as `{}` and hand the route null (PATCH then bumped the
    // version); a class-validator pass over an array or a string says nothing clear either.
    if (type === 'body' && value === undefined && metatype && BODY_MAY_BE_ABSENT.has(metatype)) value = {};
    if (type === 'body' && this.toValidate(metadata) && !isJsonObject(value)) throw notAnObject(value);
    if ((type === 'body' || type === 'query') && this.toValidate(metadata)) refuseInheritedNames(value);
    if (type !== 'query' || !metatype || !this.toValidate(metadata) || !isEmptyObject(value)) {
      return super.transform(value, metadata);
    }
    if (this.emptyQueryPasses.has(metatype)) return new (metatype as new () => unknown)();
    const validated: unknown = await super.transform(value, metadata);
    this.emptyQueryPasses.add(metatype);
    return validated;
  }
}

/**
 * Names every object inherits (`constructor`, `__proto__`, `hasOwnProperty`, `toString`, …). A client's
 * key with one of these names would pass class-validator's whitelist, which looks fields up in a plain
 * object (where `constructor` is always "declared"), and then shadow the member on the DTO.
 */
const INHERITED_NAMES = new Set(Object.getOwnPropertyNames(Object.prototype));

/**
 * 400 naming each key of `value` (nested objects and arrays included) that is one of INHERITED_NAMES,
 * with the whitelist's own message: no DTO declares such a field.
 * @throws ProblemException (400, `/problems/validation`)
 */
function refuseInheritedNames(value: unknown): void {
  if (!holdsInheritedName(value)) return; // nearly every request: nothing to name, nothing allocated
  const found: FieldError[] = [];
  const visit = (node: unknown, prefix: string) => {
    if (typeof node !== 'object' || node === null) return;
    for (const key of Object.keys(node)) {
      const field = prefix ? `${prefix}.${key}` : key;
      if (INHERITED_NAMES.has(key)) found.push({ field, messages: [`property ${field} should not exist`] });
      else visit((node as Record<string, unknown>)[key], field);
    }
  };
  visit(value, '');
  if (found.length > 0) throw validationProblem(found);
}

/** Whether `node` or anything under it has a key that is one of INHERITED_NAMES. */
function holdsInheritedName(node: unknown): boolean {
  if (typeof node !== 'object' || node === null) return false;
  for (const key of Object.keys(node)) {
    if (INHERITED_NAMES.has(key) || holdsInheritedName((node as Record<string, unknown>)[key])) return true;
  }
  return false;
}

function isJsonObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Body classes marked with @BodyMayBeAbsent(). */
const BODY_MAY_BE_ABSENT = new WeakSet<object>();

/**
 * Class decorator for a body DTO whose every field is optional: a request with no body at all is
 * validated as `{}` (the route gets the DTO's defaults) instead of the 400 "must be a JSON object"
 * every other route answers. A body that is there must still be a JSON object.
 */
export function BodyMayBeAbsent(): ClassDecorator {
  return (target) => void BODY_MAY_BE_ABSENT.add(target);
}

/** 400 for a body that is not a JSON object (every DTO is one), saying what came instead. */
function notAnObject(value: unknown): ProblemException {
  const got =
    value === undefined ? 'no body' : value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
  return new ProblemException(HttpStatus.BAD_REQUEST, `The request body must be a JSON object (got ${got})`);
}

/**
 * Checks the body of a route that takes none (@NoBody()): absent or `{}` passes; anything else is a
 * 400 problem, as on routes with a body DTO — "must be a JSON object" for an array, a string, a number
 * or null, and one field error per field for an object with fields (none is allowed).
 */
class NoBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const { body } = context.switchToHttp().getRequest<{ body?: unknown }>();
    if (body === undefined) return true;
    if (!isJsonObject(body)) throw notAnObject(body);
    const fields = Object.keys(body as object);
    if (fields.length === 0) return true;
    throw validationProblem(fields.map((field) => ({ field, messages: [`property ${field} should not exist`] })));
  }
}

/**
 * For a route that reads no body (logout, DELETE, a resend): a body sent anyway must be absent or `{}`
 * (NoBodyGuard), so `[]`, `"x"` or `1` get the same 400 as on every route with a body DTO instead of
 * being ignored. Leaves the OpenAPI document as it is (no requestBody).
 */
export const NoBody = () => UseGuards(NoBodyGuard);

function isEmptyObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  for (const key in value) if (Object.hasOwn(value, key)) return false;
  return true;
}

/**
 * The global pipe's options: unknown fields are rejected rather than silently dropped, values are
 * converted to the DTO's declared types, and failures become a 400 problem naming each field.
 */
export const VALIDATION_OPTIONS: ValidationPipeOptions = {
  whitelist: true,
  forbidNonWhitelisted: true,
  forbidUnknownValues: true,
  transform: true,
  validationError: { target: false, value: false },
  exceptionFactory: (errors) => validationProblem(toFieldErrors(errors)),
};

/** The global pipe (VALIDATION_OPTIONS, with AppValidationPipe's shortcut for empty query strings). */
export function createValidationPipe(): ValidationPipe {
  return new AppValidationPipe(VALIDATION_OPTIONS);
}

/**
 * Like @IsOptional(), but only for an absent field: an explicit `null` is still validated (and
 * rejected by the other decorators) for fields that cannot be null.
 */
export const IsOptionalNonNull = () => ValidateIf((_object, value) => value !== undefined);

/**
 * Unicode NFC for identities and search keys (names, emails, titles, `q`): the same text typed with
 * composed or decomposed accents (`é` vs `e` + U+0301) is then one value to compare, index and find.
 * Non-strings pass through for the type checks to reject.
 */
export const NormalizeNfc = () =>
  Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.normalize('NFC') : value));

/** An integer as a client writes it in a query string: `0` or digits without a leading zero. */
const DECIMAL_INTEGER = /^(?:0|[1-9]\d*)$/;

/**
 * An integer field of a query (`?limit=20`): only plain decimal text `0|[1-9][0-9]*` becomes a number;
 * `0x2`, `2e0`, ` 2`, `+2`, `02`, `2.0` stay strings, so IsInt rejects them (400 naming the field).
 * Use it instead of `@Type(() => Number)`, whose `Number()` reads all of those as 2 (nestjs/nest#8024).
 * Range checks (Min/Max) go beside it.
 */
export const IsDecimalInteger = () =>
  applyDecorators(
    Transform(({ value }: { value: unknown }) =>
      typeof value === 'string' && DECIMAL_INTEGER.test(value) ? Number(value) : value,
    ),
    IsInt({ message: ({ property }) => `${property} must be an integer in plain decimal digits (0|[1-9][0-9]*)` }),
  );
