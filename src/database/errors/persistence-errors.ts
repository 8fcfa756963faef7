import type { UnavailableCause } from '../../metrics/metrics';

/** One input field a persistence error concerns, with what is wrong with it. */
export interface ErrorField {
  /** Dotted path of the field in the input, e.g. `authorId` or `comments.2.authorId`. */
  field: string;
  messages: string[];
}

/**
 * What went wrong below the services, in the database's terms and nothing else: the database layer
 * throws these and never builds an HTTP error. `message` is safe to show a client (no SQL, no driver
 * text). The one mapping to responses is src/http/persistence-problems.ts.
 */
export abstract class PersistenceError extends Error {
  constructor(
    message: string,
    /** The input fields the error concerns, when it concerns any. */
    readonly fields?: ErrorField[],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * The write conflicts with the data as it is: a unique key taken (`constraint` names it), a row still
 * referenced by another, or a concurrent transaction that won (`retryAfterSeconds`: retrying can succeed).
 */
export class ConflictError extends PersistenceError {
  constructor(
    message: string,
    readonly options: { constraint?: string; fields?: ErrorField[]; retryAfterSeconds?: number } = {},
  ) {
    super(message, options.fields);
  }
}

/** A write's condition on the row's version (If-Match / If-None-Match) does not hold; nothing was changed. */
export class PreconditionFailedError extends PersistenceError {}

/**
 * The row the request addresses does not exist: the row itself, or the parent a foreign key names
 * when the constraint is registered with `notFound` (see constraint-problems.ts).
 */
export class NotFoundError extends PersistenceError {}

/** A row the input refers to (a foreign key) does not exist; `fields` name the input fields holding it. */
export class MissingReferenceError extends PersistenceError {}

/** The input holds a value the database cannot store (out of range, malformed, a required one missing, a CHECK). */
export class UnstorableValueError extends PersistenceError {}

/**
 * The database cannot serve the request right now (down, restarting, read-only, pool exhausted,
 * statement timed out): nothing was changed, retry after `retryAfterSeconds`. `cause` says which.
 */
export class UnavailableError extends PersistenceError {
  constructor(
    message: string,
    readonly unavailableCause: UnavailableCause,
    readonly retryAfterSeconds = 1,
  ) {
    super(message);
  }
}
