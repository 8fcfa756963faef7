import '../node-version'; // first: refuses an old Node.js before argon2 (a native addon) can crash it
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { openCliDatabase } from '../database/cli-database';
import { ensureAdmin, promoteExisting } from './admin-bootstrap';
import { PASSWORD_MIN_LENGTH, PasswordHasher } from './passwords';

/**
 * `npm run user:admin -- --email ada@example.com --name Ada`: makes sure that account exists as an
 * admin. An existing account is promoted as it is (no password asked: its own is kept). A missing one
 * is created with the password from ADMIN_PASSWORD, or typed at the terminal (not echoed); with
 * neither (no terminal, e.g. CI), it fails with exit code 1 and says so. Migrates first.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { email: { type: 'string' }, name: { type: 'string', default: 'Admin' } },
  });
  if (!values.email) throw new Error('--email is required');
  const email = values.email;
  const database = await openCliDatabase();
  try {
    await database.dataSource.initialize();
    await database.dataSource.runMigrations();
    let outcome: string = await promoteExisting(database.dataSource, email);
    if (outcome === 'missing') {
      const password = await newAccountPassword(email);
      // 'always': the operator names this account on purpose (should it appear meanwhile, it is promoted).
      outcome = await ensureAdmin(
        database.dataSource,
        new PasswordHasher(),
        { email, name: values.name, password },
        'always',
      );
    }
    console.log(`${email}: ${outcome === 'unchanged' ? 'already an admin' : outcome}`);
  } finally {
    await database.close();
  }
}

/** ADMIN_PASSWORD, else typed at the terminal; without either, an error that says what to do. */
async function newAccountPassword(email: string): Promise<string> {
  if (process.env.ADMIN_PASSWORD) return process.env.ADMIN_PASSWORD;
  if (!process.stdin.isTTY) {
    throw new Error(
      `there is no account ${email} and no terminal to ask for its password: set ADMIN_PASSWORD ` +
        `(${PASSWORD_MIN_LENGTH}+ characters) to create it`,
    );
  }
  return askHidden(`Password for the new account ${email} (${PASSWORD_MIN_LENGTH}+ characters, not shown): `);
}

/** Reads one line from the terminal without echoing it (raw mode). Ctrl-C cancels. */
async function askHidden(question: string): Promise<string> {
  const { stdin, stdout } = process;
  stdout.write(question);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  let answer = '';
  try {
    for await (const chunk of stdin) {
      for (const char of chunk as string) {
        if (char === '\r' || char === '\n' || char === '\u0004') return answer;
        if (char === '\u0003') throw new Error('cancelled');
        answer = char === '\u007f' || char === '\b' ? answer.slice(0, -1) : answer + char;
      }
    }
    return answer;
  } finally {
    stdout.write('\n');
    stdin.setRawMode(false);
  }
}

main().catch((error: unknown) => {
  console.error(`user:admin failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
