import { rmSync } from 'node:fs';
import { OPENAPI_DOCUMENT_ENV } from './openapi-document';

export default async function globalTeardown(): Promise<void> {
  await globalThis.testPostgres?.stop();
  if (globalThis.testOpenApiDocumentIsTemporary) rmSync(process.env[OPENAPI_DOCUMENT_ENV]!, { force: true });
}
