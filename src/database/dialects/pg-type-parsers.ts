import { types as pgTypes } from 'pg';
import parseTimestamp from 'postgres-date';

/** PostgreSQL type OIDs (pg_type.oid) of `timestamp` and `timestamptz`. */
const TIMESTAMP = 1114;
const TIMESTAMPTZ = 1184;

/**
 * The type parsers the app's pg pool reads column values with: pg's own (pg-types 2), except the two
 * timestamp types, which postgres-date 2 reads (its maintainers' rewrite of the regular-expression
 * parser pg-types 2 uses, and the one pg-types 4 uses; same `Date`, `Infinity` and BC results). Every
 * row carries two or more timestamps, so this parser runs more than any other (BENCHMARKS.md).
 *
 * Given to the pool as `extra.types` (pg's per-client TypeOverrides), not set on pg's global `types`:
 * other pg clients in the process (the embedded PostgreSQL's tooling, tests) parse as before.
 */
export const pgTypeParsers = {
  getTypeParser(oid: number, format: 'text' | 'binary' = 'text'): (value: string) => unknown {
    if (format === 'text' && (oid === TIMESTAMPTZ || oid === TIMESTAMP)) return parseTimestamp;
    return pgTypes.getTypeParser(oid, format) as (value: string) => unknown;
  },
};
