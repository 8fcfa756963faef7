import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateSecret } from './jwt-secret';

describe('loadOrCreateSecret', () => {
  it('generates a secret once, readable only by its owner, and returns the same one afterwards', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jwt-secret-'));
    try {
      const file = join(dir, 'nested', 'jwt-secret');
      const first = await loadOrCreateSecret(file);
      expect(first.length).toBeGreaterThanOrEqual(32);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(await loadOrCreateSecret(file)).toBe(first);
      expect((await readFile(file, 'utf8')).trim()).toBe(first);
      const [a, b] = await Promise.all([loadOrCreateSecret(join(dir, 'race')), loadOrCreateSecret(join(dir, 'race'))]);
      expect(a).toBe(b);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
