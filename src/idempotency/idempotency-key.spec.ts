import { canonicalJson, parseIdempotencyKey } from './idempotency-key';

describe('parseIdempotencyKey (draft-ietf-httpapi-idempotency-key-header-07 §2.1, RFC 8941 §3.3.3)', () => {
  it.each([
    ['"8e03978e-40d5-43e8-bc93-6894a57f9324"', '8e03978e-40d5-43e8-bc93-6894a57f9324'],
    ['  "padded"  ', 'padded'],
    ['"say \\"hi\\" \\\\ bye"', 'say "hi" \\ bye'],
    ['"with-params";a=1;b', 'with-params'],
    [`"${'x'.repeat(255)}"`, 'x'.repeat(255)],
  ])('accepts %s', (field, key) => {
    expect(parseIdempotencyKey(field)).toBe(key);
  });

  it.each([
    ['a token', 'abc'],
    ['an empty string', '""'],
    ['256 characters', `"${'x'.repeat(256)}"`],
    ['two members', '"a", "b"'],
    ['an escape other than \\" and \\\\', '"a\\n"'],
    ['a control character', '"a\tb"'],
    ['non-ASCII', '"clé"'],
    ['no closing quote', '"abc'],
  ])('refuses %s with a 400 naming the header', (_case, field) => {
    expect(() => parseIdempotencyKey(field)).toThrow(
      expect.objectContaining({
        status: 400,
        extras: expect.objectContaining({ errors: [expect.objectContaining({ field: 'Idempotency-Key' })] }),
      }),
    );
  });
});

describe('canonicalJson', () => {
  it('sorts members at every depth and keeps arrays in order, so re-serialized bodies compare equal', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 'x' }, null], e: { g: true, f: 1.5 } })).toBe(
      '{"a":[{"c":"x","d":2},null],"b":1,"e":{"f":1.5,"g":true}}',
    );
    expect(canonicalJson(JSON.parse('{ "title": "T",  "body": "B" }'))).toBe(canonicalJson({ body: 'B', title: 'T' }));
  });

  it('writes no body as null', () => {
    expect(canonicalJson(undefined)).toBe('null');
  });
});
