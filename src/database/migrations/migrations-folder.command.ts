import { relative } from 'node:path';
import { loadConfig, loadDotEnv } from '../../config/app.config';
import { dialectOf, migrationsFolder } from '../dialects/dialect';

/**
 * Prints the migrations folder of the configured database's dialect, relative to the working
 * directory (`src/database/migrations/mysql`); unset DATABASE_URL is the embedded PostgreSQL's.
 * `npm run migration:generate` writes there.
 */
loadDotEnv();
const { url } = loadConfig().database;
console.log(relative(process.cwd(), migrationsFolder(url ? dialectOf(url) : 'postgres')));
