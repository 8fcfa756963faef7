import 'reflect-metadata';
import { openCliDatabase } from './src/database/cli-database';

/**
 * The TypeORM CLI's data source (`npm run migration:*`): the app's own options, and the same
 * embedded PostgreSQL as `npm start` when no DATABASE_URL is set (stopped when the CLI exits).
 */
export default openCliDatabase().then(({ dataSource }) => dataSource);
