import { type Dialect, dialectOf } from '../../src/database/dialect';

/** The dialect the e2e suite runs on (global-setup.ts hands the workers DATABASE_URL). */
export function testDialect(): Dialect {
  return dialectOf(process.env.DATABASE_URL ?? 'postgres://');
}

/**
 * `describe` on the listed dialects only. Elsewhere the block is skipped and says why, on the
 * console, so a skip is never silent.
 */
export function describeOn(dialects: Dialect[], reason: string, name: string, tests: () => void): void {
  const dialect = testDialect();
  if (dialects.includes(dialect)) return describe(name, tests);
  describe.skip(name, tests);
  console.info(`skipped on ${dialect}: "${name}": ${reason}`);
}
