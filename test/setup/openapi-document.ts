import type { OpenAPIObject } from '@nestjs/swagger';
import { readFileSync } from 'node:fs';

/** Where global-setup.ts writes the run's OpenAPI document; test workers inherit it. */
export const OPENAPI_DOCUMENT_ENV = 'TEST_OPENAPI_DOCUMENT';

/**
 * The OpenAPI document of the code under test, as `npm run openapi` builds it (preview mode, DTO
 * schemas from the Swagger CLI plugin, which test/setup/swagger-plugin.cjs runs under ts-jest too).
 * Built once per run by global-setup.ts, so the specs check against the code as it is now, a resource
 * generated a minute ago included, and not against the committed openapi.json (CI regenerates that
 * file and fails when it is stale: .ci/run). Synchronous, so a spec can derive its tests from it.
 */
export function openApiDocument<T = OpenAPIObject>(): T {
  const file = process.env[OPENAPI_DOCUMENT_ENV];
  if (!file) throw new Error(`${OPENAPI_DOCUMENT_ENV} is not set: run the e2e specs through test/jest-e2e.json`);
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}
