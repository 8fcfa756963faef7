import { validateSync } from 'class-validator';
import { HASHING_SLOTS, inHashingSlot, IsPassword, PasswordHasher } from './passwords';

class Form {
  @IsPassword()
  password!: unknown;
}
const valid = (password: unknown) => validateSync(Object.assign(new Form(), { password })).length === 0;

describe('IsPassword (NIST SP 800-63B-4 §3.1.1.2)', () => {
  it('asks only for 15 to 128 characters, counting code points, with no composition rules', () => {
    expect(valid('a'.repeat(15))).toBe(true); // no digits, symbols or capitals required
    expect(valid('a'.repeat(14))).toBe(false);
    expect(valid('a'.repeat(128))).toBe(true);
    expect(valid('a'.repeat(129))).toBe(false);
    expect(valid('🔑'.repeat(15))).toBe(true); // 15 code points, 30 UTF-16 units
    expect(valid('\uD800'.repeat(20))).toBe(false);
    expect(valid(123456789012345)).toBe(false);
  });
});

describe('PasswordHasher', () => {
  const hasher = new PasswordHasher();
  // Real argon2id hashes: on a loaded machine four of them take longer than Jest's 5 s default. A bound, not a measure.
  jest.setTimeout(60_000);

  it('stores argon2id with at least the OWASP minimum parameters, salted', async () => {
    const hash = await hasher.hash('correct horse battery staple');
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    expect(await hasher.hash('correct horse battery staple')).not.toBe(hash);
    expect(await hasher.verify(hash, 'correct horse battery staple')).toBe(true);
    expect(await hasher.verify(hash, 'correct horse battery stapler')).toBe(false);
  });

  it('answers false for a missing hash after doing the same work', async () => {
    expect(await hasher.verify(undefined, 'anything at all here')).toBe(false);
    expect(await hasher.verify(null, '')).toBe(false);
  });

  it('treats the NFKC-equivalent spellings of a password as the same password', async () => {
    const hash = await hasher.hash('ｆｕｌｌｗｉｄｔｈ ｐａｓｓｗｏｒｄ');
    expect(await hasher.verify(hash, 'fullwidth password')).toBe(true);
  });
});

describe('inHashingSlot', () => {
  it('runs at most HASHING_SLOTS hashes at once, each in turn, and frees the slot of one that fails', async () => {
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const task = (n: number) => async () => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      order.push(n);
      if (n % 3 === 0) throw new Error(`task ${n} failed`);
      return n;
    };
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, n) => inHashingSlot(task(n))));
    expect(most).toBe(HASHING_SLOTS);
    expect(results.filter((r) => r.status === 'fulfilled').map((r) => r.value)).toEqual([1, 2, 4, 5, 7, 8, 10, 11]);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(4);
    expect(await inHashingSlot(() => Promise.resolve('free again'))).toBe('free again');
  });
});
