import type { Response } from 'supertest';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TestApp } from './test-app';

/** Checks a real response against the OpenAPI document and returns it (see test/openapi.e2e-spec.ts). */
export type ContractCheck = (method: string, template: string, res: Response) => Response;

/**
 * A feature's part of the OpenAPI contract session: sends every status its operations document,
 * each through `check`; `sample(schemaName)` is a request body as Swagger UI's Try-it-out pre-fills it
 * from the examples in the OpenAPI document. `nest g resource` writes one per resource
 * (test/contract/<name>.contract.ts).
 */
export type ContractSession = (
  api: TestApp['api'],
  check: ContractCheck,
  sample: (schemaName: string) => object,
) => Promise<void>;

const CONTRACT_DIR = join(__dirname, '..', 'contract');

/** Every `test/contract/*.contract.ts` session, by file name: found on disk, not listed by hand. */
export async function contractSessions(): Promise<ContractSession[]> {
  if (!existsSync(CONTRACT_DIR)) return [];
  const files = readdirSync(CONTRACT_DIR)
    .filter((file) => file.endsWith('.contract.ts'))
    .sort();
  const modules = await Promise.all(
    files.map((file) => import(join(CONTRACT_DIR, file)) as Promise<{ session: ContractSession }>),
  );
  return modules.map(({ session }) => session);
}
