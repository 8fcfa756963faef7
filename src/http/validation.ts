import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { ValidateIf } from 'class-validator';
import { type FieldError, validationProblem } from './problem';

/** Flattens class-validator's nested errors into `{ field: 'profile.bio', messages }`. */
export function toFieldErrors(errors: ValidationError[], prefix = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    const own = error.constraints ? [{ field, messages: Object.values(error.constraints) }] : [];
    return [...own, ...toFieldErrors(error.children ?? [], field)];
  });
}

/**
 * The global pipe: unknown fields are rejected rather than silently dropped, values are converted to
 * the DTO's declared types, and failures become a 400 problem naming each field.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: true,
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => validationProblem(toFieldErrors(errors)),
  });
}

/**
 * Like @IsOptional(), but only for an absent field: an explicit `null` is still validated (and
 * rejected by the other decorators) for fields that cannot be null.
 */
export const IsOptionalNonNull = () => ValidateIf((_object, value) => value !== undefined);
