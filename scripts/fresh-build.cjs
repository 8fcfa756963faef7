'use strict';
// `npm start`'s prestart: builds dist/ only when its sources changed since the last build, and says
// which. Plain CommonJS with no dependencies, so it runs (and checks the Node.js version first)
// before anything is compiled. `--record` notes the current sources as built (npm run build's
// postbuild); `--check` only reports (exit 0: up to date, 1: a build is due).
const { createHash } = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { existsSync, readdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const root = process.cwd(); // npm runs scripts from the package root
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const needed = Number(/\d+/.exec(pkg.engines.node)[0]);
if (Number(process.versions.node.split('.')[0]) < needed) {
  console.error(
    `This app needs Node.js ${needed} or newer (package.json "engines"); this is Node.js ${process.versions.node}. ` +
      `Switch to Node.js ${needed} (e.g. \`nvm use\`, which reads .nvmrc), then run \`npm ci\` again ` +
      'if you installed with another version, so native modules (argon2) are rebuilt for it.',
  );
  process.exit(1);
}

const STAMP = join(root, 'dist', '.sources-sha256');
/** What `nest build` reads: the sources, the compiler and Nest CLI settings, the installed versions. */
const INPUTS = ['tsconfig.json', 'tsconfig.build.json', 'nest-cli.json', 'package-lock.json'];

function filesUnder(dir) {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(root.length + 1))
    .sort();
}

/** SHA-256 over every input's path and content: a checkout or an edit that changes nothing is no change. */
function sourcesDigest() {
  const hash = createHash('sha256');
  for (const file of [...INPUTS, ...filesUnder('src')]) {
    hash.update(`${file}\0`);
    if (existsSync(join(root, file))) hash.update(readFileSync(join(root, file)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

const digest = sourcesDigest();
const built = existsSync(join(root, 'dist', 'main.js')) && existsSync(STAMP) && readFileSync(STAMP, 'utf8') === digest;
const mode = process.argv[2];
if (mode === '--record') {
  writeFileSync(STAMP, digest);
} else if (mode === '--check') {
  console.log(built ? 'dist/ is up to date with src/' : 'dist/ is older than src/: a build is due');
  process.exit(built ? 0 : 1);
} else if (built) {
  console.log('dist/ is up to date with src/: starting without a rebuild');
} else {
  const reason = existsSync(join(root, 'dist', 'main.js')) ? 'src/ changed since the last build' : 'no build yet';
  console.log(`Building dist/ (${reason}): nest build, about half a minute…`);
  const started = Date.now();
  const build = spawnSync(join(root, 'node_modules', '.bin', 'nest'), ['build'], { stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
  writeFileSync(STAMP, digest);
  console.log(`Built in ${Math.round((Date.now() - started) / 1000)} s; starting`);
}
