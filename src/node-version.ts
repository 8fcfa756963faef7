/**
 * Imported first by every entry point (main.ts, the CLI commands): under a Node.js older than the one
 * package.json's `engines` and `.nvmrc` name, it exits with one line saying what is needed, before
 * anything loads a native addon. argon2 installed under Node 24 otherwise crashes an older Node with a
 * bare "Segmentation fault". Keep it free of imports, so nothing loads before it runs.
 */

/** The oldest Node.js major version the app runs on (package.json `engines.node`, `.nvmrc`). */
export const MIN_NODE_MAJOR = 24;

/** The problem with running on Node `version` (`process.versions.node`, e.g. `20.11.1`), or undefined if none. */
export function nodeVersionProblem(version: string): string | undefined {
  const major = Number(version.split('.')[0]);
  if (major >= MIN_NODE_MAJOR) return undefined;
  return (
    `This app needs Node.js ${MIN_NODE_MAJOR} or newer (package.json "engines"); this is Node.js ${version}. ` +
    `Switch to Node.js ${MIN_NODE_MAJOR} (e.g. \`nvm use\`, which reads .nvmrc), then run \`npm ci\` again ` +
    'if you installed with another version, so native modules (argon2) are rebuilt for it.'
  );
}

const problem = nodeVersionProblem(process.versions.node);
if (problem) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}
