// @ts-check
/**
 * `nest g resource <name>`: a REST resource in the house style (docs/development.md › Adding a resource). The
 * files come from ./files (plain templates: `<%= %>` in contents, `__plural__`/`__singular__` in
 * paths); this factory only derives the names, registers the module and entity, and formats.
 */
// ES module: the schematics engine require()s it, as it does @nestjs/schematics' own (Node ≥ 22).
import { strings } from '@angular-devkit/core';
import { SchematicsException, apply, applyTemplates, chain, mergeWith, move, url } from '@angular-devkit/schematics';
import { join } from 'node:path';
import pluralize from 'pluralize';
import ts from 'typescript';

/**
 * Identifiers the templates declare themselves: a resource whose singular is one of them gets a
 * suffixed local variable name instead (`pages` → `pageEntity`), so the generated code still compiles.
 */
const TEMPLATE_IDENTIFIERS = new Set([
  'conditions',
  'dto',
  'id',
  'ifMatch',
  'name',
  'page',
  'query',
  'req',
  'res',
  'repository',
  'values',
]);

/**
 * The rule: validates the options, writes src/<name>/, test/<name>.e2e-spec.ts and
 * test/<name>.contract.ts (beside the features' own), imports the
 * module into AppModule and the entity into src/database/entities.ts, then runs Prettier over
 * everything it touched (so `npm run lint` passes as generated).
 *
 * @param {{ name: string, sourceRoot?: string, path?: string, type?: string, crud?: boolean, skipImport?: boolean, language?: string }} options
 * @returns {import('@angular-devkit/schematics').Rule}
 */
export function resource(options) {
  const names = resourceNames(options);
  const sourceRoot = options.sourceRoot || 'src';
  return (tree, context) => {
    const folder = tree.getDir(`${sourceRoot}/${names.plural}`);
    if (folder.subfiles.length > 0 || folder.subdirs.length > 0) {
      throw new SchematicsException(`${sourceRoot}/${names.plural} already exists`);
    }
    const templateData = { ...names, sourceRoot };
    return chain([
      mergeWith(apply(url('./files/src'), [applyTemplates(templateData), move(sourceRoot)])),
      mergeWith(apply(url('./files/test'), [applyTemplates(templateData), move('test')])),
      options.skipImport ? (t) => t : registerResource(sourceRoot, names),
      formatWithPrettier(),
      (t) => {
        context.logger.info(nextSteps(names));
        return t;
      },
    ]);
  };
}

/**
 * Every spelling of the resource's name the templates use, e.g. for `blog-posts`: plural
 * `blog-posts` (folder, route, file names), singular `blog-post`, Plural `BlogPosts`, Singular
 * `BlogPost` (classes), pluralVar `blogPosts`, singularVar `blogPost`, table `blog_posts`,
 * constantCase `BLOG_POSTS` (the list's cursor scope),
 * label `blog post`, Label `Blog post` (messages).
 *
 * @param {{ name: string, path?: string, type?: string, crud?: boolean, language?: string }} options
 */
function resourceNames(options) {
  if (options.type && options.type !== 'rest') {
    throw new SchematicsException(
      `This project's resource schematic writes REST resources only; for --type ${options.type} run ` +
        '`nest g resource <name> --collection @nestjs/schematics`.',
    );
  }
  if (options.crud === false) throw new SchematicsException('The house resource is CRUD; drop --crud=false.');
  if (options.language && options.language !== 'ts') throw new SchematicsException('Only TypeScript is supported.');
  if (options.path) {
    throw new SchematicsException('--path is not supported: a resource lives in <sourceRoot>/<name>/ beside users/.');
  }
  const plural = strings.dasherize(String(options.name ?? '').trim());
  if (!/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(plural)) {
    throw new SchematicsException(
      `"${options.name}" is not a resource name: use letters, digits and dashes, e.g. "tags".`,
    );
  }
  const singular = pluralize.singular(plural);
  const singularVar = strings.camelize(singular);
  const label = singular.replace(/-/g, ' ');
  return {
    plural,
    singular,
    Plural: strings.classify(plural),
    Singular: strings.classify(singular),
    pluralVar: strings.camelize(plural),
    singularVar: isTaken(singularVar) ? `${singularVar}Entity` : singularVar,
    table: strings.underscore(plural),
    constantCase: strings.underscore(plural).toUpperCase(),
    label,
    Label: label.charAt(0).toUpperCase() + label.slice(1),
  };
}

/** @param {string} identifier */
function isTaken(identifier) {
  return (
    TEMPLATE_IDENTIFIERS.has(identifier) ||
    ts.identifierToKeywordKind(ts.factory.createIdentifier(identifier)) !== undefined
  );
}

/**
 * Adds the module to AppModule.forRoot's `imports` and the entity to the `entities` array, each
 * with its import statement, by editing the TypeScript syntax tree (Prettier lays it out after).
 *
 * @param {string} sourceRoot
 * @param {ReturnType<typeof resourceNames>} names
 * @returns {import('@angular-devkit/schematics').Rule}
 */
function registerResource(sourceRoot, names) {
  return (tree) => {
    appendToArray(tree, `${sourceRoot}/app.module.ts`, {
      array: (node) => ts.isPropertyAssignment(node) && node.name.getText() === 'imports',
      element: `${names.Plural}Module`,
      importLine: `import { ${names.Plural}Module } from './${names.plural}/${names.plural}.module';`,
    });
    appendToArray(tree, `${sourceRoot}/database/entities.ts`, {
      array: (node) => ts.isVariableDeclaration(node) && node.name.getText() === 'entities',
      element: names.Singular,
      importLine: `import { ${names.Singular} } from '../${names.plural}/entities/${names.singular}.entity';`,
    });
    return tree;
  };
}

/**
 * Appends `element` to the array literal initialising a node `array` matches — of several, the one
 * with the most plain identifiers (for AppModule, the feature modules forRoot imports, not some
 * nested `imports`) — and `importLine` after the file's last import.
 *
 * @param {import('@angular-devkit/schematics').Tree} tree
 * @param {string} path
 * @param {{ array: (node: import('typescript').Node) => boolean, element: string, importLine: string }} edit
 */
function appendToArray(tree, path, { array, element, importLine }) {
  const text = tree.readText(path);
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  /** @type {import('typescript').ArrayLiteralExpression[]} */
  const candidates = [];
  /** @param {import('typescript').Node} node */
  const visit = (node) => {
    if (array(node)) {
      const initializer = /** @type {{ initializer?: import('typescript').Expression }} */ (node).initializer;
      if (initializer && ts.isArrayLiteralExpression(initializer)) candidates.push(initializer);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  const identifiers = (/** @type {import('typescript').ArrayLiteralExpression} */ list) =>
    list.elements.filter(ts.isIdentifier).length;
  const target = candidates.sort((a, b) => identifiers(b) - identifiers(a))[0];
  if (!target) throw new SchematicsException(`${path}: found no array to add ${element} to`);
  const imports = source.statements.filter(ts.isImportDeclaration);
  const lastImport = imports[imports.length - 1];

  const recorder = tree.beginUpdate(path);
  const elements = target.elements;
  if (elements.length === 0) recorder.insertLeft(target.getStart() + 1, element);
  else recorder.insertRight(elements[elements.length - 1].getEnd(), `, ${element}`);
  recorder.insertRight(lastImport ? lastImport.getEnd() : 0, `\n${importLine}`);
  tree.commitUpdate(recorder);
}

/**
 * Prettier over every file this run created or changed, with the project's .prettierrc (resolved
 * from the real path: @nestjs/schematics' formatFiles resolves `/src/…` from the filesystem root and
 * so formats with Prettier's defaults, which `npm run lint` then rejects).
 *
 * @returns {import('@angular-devkit/schematics').Rule}
 */
function formatWithPrettier() {
  return async (tree) => {
    const prettier = await import('prettier');
    const touched = new Set(tree.actions.filter((action) => action.kind !== 'd').map((action) => action.path));
    for (const path of touched) {
      if (!path.endsWith('.ts') || !tree.exists(path)) continue;
      const filepath = join(process.cwd(), path);
      const config = (await prettier.resolveConfig(filepath)) ?? {};
      tree.overwrite(path, await prettier.format(tree.readText(path), { ...config, filepath }));
    }
    return tree;
  };
}

/** @param {ReturnType<typeof resourceNames>} names */
function nextSteps(names) {
  return [
    '',
    `${names.Plural} written in the house style. Next:`,
    `  npm run migration:generate -- Create${names.Plural}   # the ${names.table} table, from the entity (PostgreSQL)`,
    '  npm run drivers                  # first, once: SQLite and MariaDB/MySQL need their optional drivers',
    `  DATABASE_URL=sqlite:./.data/app.db npm run migration:generate -- Create${names.Plural}   # the same for each other`,
    `  DATABASE_URL=mariadb://root@127.0.0.1:3306/app npm run migration:generate -- Create${names.Plural}   # dialect you ship`,
    `  npm test                         # the generated spec, the contract and the fuzz suite pass as written`,
    '  npm run openapi                  # then commit openapi.json: CI fails while it lacks the new routes',
    `Then give ${names.Singular} its real columns (entity, DTOs, response, constraints) and regenerate the migration.`,
  ].join('\n');
}
