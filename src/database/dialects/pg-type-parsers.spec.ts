import { types as pgTypes } from 'pg';
import { pgTypeParsers } from './pg-type-parsers';

/** What a parser returns, comparable with toEqual across Date, number and null. */
const valueOf = (parsed: unknown) => (parsed instanceof Date ? parsed.getTime() : parsed);

describe('pgTypeParsers', () => {
  // The values PostgreSQL's text output can give for timestamptz (1184) and timestamp (1114), under any
  // session TimeZone: the replacement must read each exactly as pg's default parser does.
  it.each([
    [1184, '2026-12-07 08:37:37.334567+00'],
    [1184, '2026-12-07 08:37:37+00'],
    [1184, '2026-12-07 08:37:37.3+00'],
    [1184, '2026-12-07 08:37:37.334+05:30'],
    [1184, '2026-12-07 08:37:37-03'],
    [1184, '1887-01-01 00:00:00+00:09:21'],
    [1184, '0099-01-01 00:00:00+00'],
    [1184, '1000-01-01 00:00:00+00 BC'],
    [1184, '275760-09-13 00:00:00+00'],
    [1184, 'infinity'],
    [1184, '-infinity'],
    [1114, '2026-12-07 08:37:37.334567'],
    [1114, '0044-03-15 12:00:00 BC'],
  ])('reads type %i %p as pg-types 2 does', (oid, text) => {
    const ours = pgTypeParsers.getTypeParser(oid)(text);
    expect(valueOf(ours)).toEqual(valueOf(pgTypes.getTypeParser(oid, 'text')(text)));
    expect(typeof ours).toBe(typeof pgTypes.getTypeParser(oid, 'text')(text));
  });

  it("leaves every other type to pg's own parsers", () => {
    for (const oid of [16, 20, 23, 25, 1082, 1114 + 1, 1700, 3802]) {
      expect(pgTypeParsers.getTypeParser(oid)).toBe(pgTypes.getTypeParser(oid, 'text'));
    }
    expect(pgTypeParsers.getTypeParser(1184, 'binary')).toBe(pgTypes.getTypeParser(1184, 'binary'));
  });
});
