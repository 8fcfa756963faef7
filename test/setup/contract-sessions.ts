import type { Response } from 'supertest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TestApp } from './test-app';

/** Checks a real response against the OpenAPI document and returns it (see test/openapi.e2e-spec.ts). */
export type ContractCheck = (method: string, template: string, res: Response) => Response;

/**
 * A feature's part of the OpenAPI contract session: sends every status its operations document,
 * each through `check`; `sample(schemaName)` is a request body as Swagger UI's Try-it-out pre-fills it
 * from the examples in the OpenAPI document. A feature's session sits beside its e2e spec
 * (test/<feature>.contract.ts); `nest g resource` writes one per resource.
 */
export type ContractSession = (
  api: TestApp['api'],
  check: ContractCheck,
  sample: (schemaName: string) => object,
) => Promise<void>;

const TEST_DIR = join(__dirname, '..');

/** Every `test/*.contract.ts` session, by file name: found on disk, not listed by hand. */
export async function contractSessions(): Promise<ContractSession[]> {
  const files = readdirSync(TEST_DIR)
    .filter((file) => file.endsWith('.contract.ts'))
    .sort();
  const modules = await Promise.all(
    files.map((file) => import(join(TEST_DIR, file)) as Promise<{ session: ContractSession }>),
  );
  return modules.map(({ session }) => session);
}
