import 'reflect-metadata';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { openCliDatabase } from '../database/cli-database';
import { ensureAdmin } from './admin-bootstrap';
import { PasswordHasher } from './passwords';

/**
 * `npm run user:admin -- --email ada@example.com --name Ada`: makes sure that account exists as an
 * admin, as ADMIN_EMAIL/ADMIN_PASSWORD do at startup (the password is only used to create it). The
 * password comes from the ADMIN_PASSWORD environment variable, or is asked for. Migrates first.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { email: { type: 'string' }, name: { type: 'string', default: 'Admin' } },
  });
  if (!values.email) throw new Error('--email is required');
  const password = process.env.ADMIN_PASSWORD || (await ask('Password for a new account (15+ characters): '));
  const database = await openCliDatabase();
  try {
    await database.dataSource.initialize();
    await database.dataSource.runMigrations();
    const outcome = await ensureAdmin(
      database.dataSource,
      new PasswordHasher(),
      {
        email: values.email,
        name: values.name,
        password,
      },
      'always', // the operator names this account on purpose
    );
    console.log(`${values.email}: ${outcome === 'unchanged' ? 'already an admin' : outcome}`);
  } finally {
    await database.close();
  }
}

async function ask(question: string): Promise<string> {
  const prompt = createInterface({ input: process.stdin, output: process.stdout, terminal: false });
  try {
    return (await prompt.question(question)).trim();
  } finally {
    prompt.close();
  }
}

main().catch((error: unknown) => {
  console.error(`user:admin failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
