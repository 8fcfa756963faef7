// The @nestjs/swagger CLI plugin as a ts-jest AST transformer (NestJS docs, "CLI Plugin → Integration
// with ts-jest (e2e tests)"), with the options `nest build` uses, read from nest-cli.json: the app under
// test then documents its DTOs exactly as the built app does, so the specs can check responses against
// the document the app serves (one source of truth) instead of the committed openapi.json, which CI
// regenerates and diffs separately (.ci/run).
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const plugin = require('@nestjs/swagger/plugin');

const nestCli = JSON.parse(readFileSync(join(__dirname, '..', '..', 'nest-cli.json'), 'utf8'));
const swagger = nestCli.compilerOptions.plugins.find((entry) => entry.name === '@nestjs/swagger');

module.exports = {
  name: 'nestjs-swagger-plugin',
  // ts-jest keys its cache of compiled files on this: any change to the options, this file or the
  // plugin's version recompiles them.
  version: createHash('sha256')
    .update(readFileSync(__filename))
    .update(JSON.stringify(swagger.options))
    .update(require('@nestjs/swagger/package.json').version)
    .digest('hex')
    .slice(0, 16),
  // ts-jest calls the factory for each file it emits, but its `program` is the one its language service
  // had at startup (ts-jest 29.4): the plugin's type checker would then not know the file being emitted,
  // and every DTO type imported from another file came out as `Object`. The service's current program
  // is the one emitting this file.
  factory: (compiler) => plugin.before(swagger.options, compiler._languageService?.getProgram() ?? compiler.program),
};
