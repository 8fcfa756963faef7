import { Injectable } from '@nestjs/common';
import * as argon2 from 'argon2';
import { ValidateBy, type ValidationOptions } from 'class-validator';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';

/**
 * argon2id at OWASP's minimum (Password Storage Cheat Sheet: m = 19 MiB, t = 2, p = 1): tens of ms
 * of one core per hash or verification (docs/security.md). Raising them later is safe: stored hashes carry their
 * own parameters (PHC string format), so old ones still verify.
 */
export const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/**
 * NIST SP 800-63B-4 §3.1.1.2: at least 15 characters for a password that is the only factor, at least
 * 64 allowed, no composition rules, every Unicode code point counts as one character after
 * normalization. The maximum bounds the work a single request can ask of the hasher.
 */
export const PASSWORD_MIN_LENGTH = 15;
export const PASSWORD_MAX_LENGTH = 128;

/** NFKC, as NIST recommends, so the same password typed on different keyboards hashes the same. */
const normalize = (password: string) => password.normalize('NFKC');

/** Validation for a new password (sign-up, password change): the NIST length rules, nothing else. */
export function IsPassword(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isPassword',
      validator: {
        validate: (value: unknown) => {
          if (typeof value !== 'string' || !value.isWellFormed()) return false;
          const length = [...normalize(value)].length;
          return length >= PASSWORD_MIN_LENGTH && length <= PASSWORD_MAX_LENGTH;
        },
        defaultMessage: (args) =>
          `${args?.property ?? 'password'} must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters long`,
      },
    },
    options,
  );
}

/**
 * Hashes and verifications that run at once, at most: one per core (libuv's pool would run 4). Each
 * holds ARGON2_OPTIONS.memoryCost (19 MiB) until it ends, and past one per core more of them at
 * once only add memory, not throughput. The others wait their turn, in order.
 */
export const HASHING_SLOTS = Math.min(4, availableParallelism());
let hashing = 0;
const waitingForSlot: (() => void)[] = [];

/** Runs `work` once fewer than HASHING_SLOTS others are running (process-wide); its result or error is `work`'s. */
export async function inHashingSlot<T>(work: () => Promise<T>): Promise<T> {
  if (hashing < HASHING_SLOTS) hashing++;
  else await new Promise<void>((resolve) => waitingForSlot.push(resolve)); // the slot is handed over
  try {
    return await work();
  } finally {
    const next = waitingForSlot.shift();
    if (next) next();
    else hashing--;
  }
}

/** Hashes and verifies passwords with argon2id; the only code that sees a password after validation. */
@Injectable()
export class PasswordHasher {
  /** Verified against when there is no real hash, so an unknown email costs the same time as a known one. */
  private dummyHash?: Promise<string>;

  /** A PHC string (`$argon2id$v=19$m=19456,p=1,t=2$salt$hash`), with a fresh random salt. */
  hash(password: string): Promise<string> {
    return inHashingSlot(() => argon2.hash(normalize(password), ARGON2_OPTIONS));
  }

  /**
   * True when `password` matches `hash`. With no hash (unknown account, or one without a password)
   * it verifies against a dummy hash anyway and answers false: same work, same time.
   */
  async verify(hash: string | null | undefined, password: string): Promise<boolean> {
    this.dummyHash ??= this.hash(randomBytes(32).toString('base64url'));
    const against = hash ?? (await this.dummyHash);
    const matches = await inHashingSlot(() => argon2.verify(against, normalize(password)));
    return matches && Boolean(hash);
  }
}
