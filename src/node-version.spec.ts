import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIN_NODE_MAJOR, nodeVersionProblem } from './node-version';

describe('the Node.js version check', () => {
  it('names the version needed and the one running, and passes the current one', () => {
    expect(nodeVersionProblem('20.11.1')).toMatch(/needs Node\.js 24 or newer.*this is Node\.js 20\.11\.1/);
    expect(nodeVersionProblem('24.0.0')).toBeUndefined();
    expect(nodeVersionProblem(process.versions.node)).toBeUndefined();
  });

  it('agrees with package.json engines and .nvmrc', () => {
    const root = join(__dirname, '..');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(pkg.engines.node).toBe(`>=${MIN_NODE_MAJOR}`);
    expect(readFileSync(join(root, '.nvmrc'), 'utf8').trim()).toBe(String(MIN_NODE_MAJOR));
  });
});
