/**
 * `npm run docs:config`: writes docs/configuration.md (one table of every setting) and `.env.example`
 * from the config schema, the `Environment` class of src/config/app.config.ts — each property's name,
 * type and allowed values (from its class-validator decorators), default (its initializer) and
 * docstring. `--check` writes nothing and exits 1 when either file differs from what it would write
 * (CI runs it), so the page cannot drift from the code.
 *
 * Read with the TypeScript compiler API rather than at run time: the class is not exported and keeps
 * its docstrings only in the source. Throws when a property has no docstring, or a decorator argument
 * is not a literal (a number, string, boolean, array, object or regular expression, e.g. `15 * 60_000`);
 * a default that is not a literal is shown as written and left out of `.env.example`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { isDeepStrictEqual, parseEnv } from 'node:util';
import { format, resolveConfig } from 'prettier';
import ts from 'typescript';
import { loadConfig } from '../src/config/app.config';

const ROOT = join(__dirname, '..');
const SCHEMA = join(ROOT, 'src/config/app.config.ts');
const PAGE = join(ROOT, 'docs/configuration.md');
const ENV_EXAMPLE = join(ROOT, '.env.example');

/** One environment variable as the schema declares it. */
interface Setting {
  name: string;
  /** Markdown, one paragraph (the docstring's lines joined). */
  doc: string;
  /** `@example` tags: values for the commented-out lines of `.env.example`. */
  examples: string[];
  /** Undefined: unset unless given (an optional property without initializer). */
  defaultValue: string | number | boolean | undefined;
  /** A default that is not a literal (a constant, a call), as written: shown, never set in `.env.example`. */
  defaultExpression?: string;
  /** E.g. "integer (ms), ≥ 1" or "one of `json`, `pretty`". */
  type: string;
}

/** A literal's value, as the decorators and defaults use them. */
type Literal = string | number | boolean | RegExp | Literal[] | { [key: string]: Literal };

/**
 * Evaluates a literal expression of the schema: numbers (`15 * 60_000`), strings, booleans, regular
 * expressions, arrays, objects. Throws for anything else (an identifier, a call), so nothing is guessed.
 */
function evaluate(node: ts.Expression, source: ts.SourceFile): Literal {
  const fail = (): never => {
    throw new Error(`${relative(ROOT, SCHEMA)}: not a literal: ${node.getText(source)}`);
  };
  if (ts.isNumericLiteral(node)) return Number(node.text);
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (node.kind === ts.SyntaxKind.TrueKeyword) return true;
  if (node.kind === ts.SyntaxKind.FalseKeyword) return false;
  if (ts.isRegularExpressionLiteral(node)) {
    const [, pattern, flags] = /^\/(.*)\/([a-z]*)$/s.exec(node.text) ?? fail();
    return new RegExp(pattern, flags);
  }
  if (ts.isParenthesizedExpression(node)) return evaluate(node.expression, source);
  if (ts.isArrayLiteralExpression(node)) return node.elements.map((element) => evaluate(element, source));
  if (ts.isObjectLiteralExpression(node)) {
    return Object.fromEntries(
      node.properties.map((property) =>
        ts.isPropertyAssignment(property) && (ts.isIdentifier(property.name) || ts.isStringLiteral(property.name))
          ? [property.name.text, evaluate(property.initializer, source)]
          : fail(),
      ),
    );
  }
  if (ts.isPrefixUnaryExpression(node) && node.operator === ts.SyntaxKind.MinusToken) {
    const operand = evaluate(node.operand, source);
    return typeof operand === 'number' ? -operand : fail();
  }
  if (ts.isBinaryExpression(node)) {
    const left = evaluate(node.left, source);
    const right = evaluate(node.right, source);
    if (typeof left !== 'number' || typeof right !== 'number') return fail();
    switch (node.operatorToken.kind) {
      case ts.SyntaxKind.PlusToken:
        return left + right;
      case ts.SyntaxKind.MinusToken:
        return left - right;
      case ts.SyntaxKind.AsteriskToken:
        return left * right;
      case ts.SyntaxKind.SlashToken:
        return left / right;
    }
  }
  return fail();
}

/** The unit a name's suffix states (`_MS`, `_SECONDS`), for the type column. */
function unitOf(name: string): string {
  if (name.endsWith('_MS')) return ' (ms)';
  if (name.endsWith('_SECONDS')) return ' (s)';
  return '';
}

/** "integer (ms), ≥ 1", "boolean", "one of `a`, `b`", … from the property's decorators. */
function describeType(name: string, decorators: Map<string, Literal[]>, raw: Map<string, string>): string {
  const parts: string[] = [];
  const min = decorators.get('Min')?.[0] as number | undefined;
  const max = decorators.get('Max')?.[0] as number | undefined;
  for (const [decorator, args] of decorators) {
    switch (decorator) {
      case 'IsOptional':
      case 'Min':
      case 'Max':
        break;
      case 'IsIn':
        parts.push(`one of ${(args[0] as string[]).map((value) => `\`${value}\``).join(', ')}`);
        break;
      case 'IsInt':
        parts.push(
          `integer${unitOf(name)}${
            min !== undefined && max !== undefined
              ? `, ${min}–${max}`
              : min !== undefined
                ? `, ≥ ${min}`
                : max !== undefined
                  ? `, ≤ ${max}`
                  : ''
          }`,
        );
        break;
      case 'IsBoolean':
        parts.push('boolean');
        break;
      case 'IsString':
        if (!decorators.has('Length') && !decorators.has('Matches')) parts.push('string');
        break;
      case 'Length':
        parts.push(`string of ${args[0] as number}–${args[1] as number} characters`);
        break;
      case 'IsEmail':
        parts.push('an email address');
        break;
      case 'Matches':
      case 'IsDatabaseUrl': {
        const options = decorator === 'Matches' ? args[1] : args[0];
        const message = (options as { message?: string } | undefined)?.message;
        const stated = message?.match(/ must be (.*)$/)?.[1];
        parts.push(stated ?? `matching \`${(args[0] as RegExp).source}\``);
        break;
      }
      default:
        parts.push(`\`@${raw.get(decorator)}\``); // a decorator this script does not know: shown as written
    }
  }
  return parts.join(', ');
}

/** A default must be a string, number or boolean: an environment variable's value. */
function scalar(value: Literal, name: string): string | number | boolean {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  throw new Error(`${relative(ROOT, SCHEMA)}: ${name}'s default is not a string, number or boolean`);
}

/** The property's default: its initializer's value if it is a literal, else the expression as written. */
function defaultOf(
  member: ts.PropertyDeclaration,
  source: ts.SourceFile,
  name: string,
): Pick<Setting, 'defaultValue' | 'defaultExpression'> {
  if (!member.initializer) return { defaultValue: undefined };
  let value: Literal;
  try {
    value = evaluate(member.initializer, source);
  } catch {
    return { defaultValue: undefined, defaultExpression: member.initializer.getText(source) };
  }
  return { defaultValue: scalar(value, name) };
}

/** The `Environment` class's properties, in declaration order. */
export function readSchema(file = SCHEMA): Setting[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  let environment: ts.ClassDeclaration | undefined;
  source.forEachChild((node) => {
    if (ts.isClassDeclaration(node) && node.name?.text === 'Environment') environment = node;
  });
  if (!environment) throw new Error(`${file}: no class Environment`);

  const settings: Setting[] = [];
  for (const member of environment.members) {
    if (!ts.isPropertyDeclaration(member) || !ts.isIdentifier(member.name)) continue;
    const name = member.name.text;
    const decorators = new Map<string, Literal[]>();
    const raw = new Map<string, string>();
    for (const decorator of ts.getDecorators(member) ?? []) {
      const call = decorator.expression;
      if (!ts.isCallExpression(call) || !ts.isIdentifier(call.expression)) continue;
      decorators.set(
        call.expression.text,
        call.arguments.map((arg) => evaluate(arg, source)),
      );
      raw.set(call.expression.text, call.getText(source));
    }
    const jsDoc = ts.getJSDocCommentsAndTags(member).filter(ts.isJSDoc);
    const doc = jsDoc
      .map((comment) => ts.getTextOfJSDocComment(comment.comment) ?? '')
      .join(' ')
      .replace(/\s+/g, ' ')
      .trim();
    if (!doc) {
      throw new Error(
        `${relative(ROOT, file)}: ${name} has no docstring: say what it does, its unit, what unset means (it becomes docs/configuration.md and .env.example)`,
      );
    }
    const examples = jsDoc
      .flatMap((comment) => comment.tags ?? [])
      .filter((tag) => tag.tagName.text === 'example')
      .map((tag) => (ts.getTextOfJSDocComment(tag.comment) ?? '').trim());
    settings.push({
      name,
      doc,
      examples,
      ...defaultOf(member, source, name),
      type: describeType(name, decorators, raw),
    });
  }
  return settings;
}

/** A markdown table cell: one line, pipes escaped, `docs/x.md` linked relative to docs/. */
function cell(text: string): string {
  return text
    .replace(/\|/g, '\\|')
    .replace(/(?<![[(/\w])docs\/([\w-]+\.md)/g, '[$1]($1)')
    .replace(/\n/g, ' ');
}

function defaultCell({ defaultValue: value, defaultExpression }: Setting): string {
  if (defaultExpression !== undefined) return `\`${defaultExpression}\` (in the code)`;
  if (value === undefined) return 'unset';
  if (value === '') return 'empty';
  return `\`${String(value)}\``;
}

/** docs/configuration.md, before Prettier. */
function renderPage(settings: Setting[]): string {
  const rows = settings.map((s) => `| \`${s.name}\` | ${cell(s.type)} | ${defaultCell(s)} | ${cell(s.doc)} |`);
  return `<!-- Generated by \`npm run docs:config\` from src/config/app.config.ts: edit the docstrings there, not this file (CI checks it is current). -->

# Configuration

Every setting is optional: with none, \`npm start\` runs on an embedded PostgreSQL
([getting-started.md](getting-started.md)). They are read and validated once at startup by
\`src/config/app.config.ts\`, the only code that reads \`process.env\`. A bad value stops the process with one
line naming the variable, e.g.
\`Startup failed: Invalid configuration: DB_POOL_SIZE="abc": DB_POOL_SIZE must be an integer number\`
(secrets show as \`***\`). Copy [\`.env.example\`](../.env.example) (generated from the same schema) to \`.env\`
to override the defaults; real environment variables win over \`.env\`.

Booleans accept \`true\`/\`false\`, \`1\`/\`0\`, \`yes\`/\`no\`; an empty value counts as unset. Besides each
variable's own check, startup refuses:

- \`NODE_ENV=production\` without \`JWT_SECRET\`;
- \`NODE_ENV=production\` with a \`DATABASE_URL\` and without \`CURSOR_SECRET\` (instances with their own
  random keys would reject each other's cursors);
- \`DATABASE_REPLICA_URLS\` that are not \`postgres://\` URLs, or without a PostgreSQL \`DATABASE_URL\`.

Tracing also reads OpenTelemetry's standard variables itself when it is on: \`OTEL_EXPORTER_OTLP_HEADERS\`,
\`OTEL_EXPORTER_OTLP_TIMEOUT\`, \`OTEL_SERVICE_NAME\` (default \`nest-typeorm-users\`),
\`OTEL_RESOURCE_ATTRIBUTES\` ([operations.md](operations.md)).

| variable | type | default | meaning |
| --- | --- | --- | --- |
${rows.join('\n')}
`;
}

/** Words of `text` wrapped into `# ` comment lines at most `width` wide (longer only for a long code span). */
function commentLines(text: string, width = 110): string[] {
  const lines: string[] = [];
  let line = '#';
  for (const word of text.match(/(?:`[^`]*`|[^\s`])+/g) ?? []) {
    // a code span is never split
    if (line.length + 1 + word.length > width && line !== '#') {
      lines.push(line);
      line = '#';
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines;
}

/** `.env.example`: each setting's docstring, then its default, or its examples commented out. */
function renderEnvExample(settings: Setting[]): string {
  const blocks = settings.map((s) => {
    const value =
      s.defaultValue !== undefined && s.defaultValue !== ''
        ? [`${s.name}=${String(s.defaultValue)}`]
        : s.defaultExpression !== undefined
          ? [`# ${s.name}= (default: ${s.defaultExpression})`]
          : s.examples.length > 0
            ? s.examples.map((example) => `# ${s.name}=${example}`)
            : [`# ${s.name}=`];
    return [...commentLines(s.doc), ...value].join('\n');
  });
  return [
    [
      '# Generated by `npm run docs:config` from src/config/app.config.ts (docs/configuration.md has the same, as a table).',
      '# Copy to .env to override defaults (real environment variables win over .env).',
      '# Every variable is optional: with none set, `npm start` runs on an embedded PostgreSQL.',
    ].join('\n'),
    ...blocks,
    [
      "# OpenTelemetry's SDK reads its other standard variables itself when tracing is on, e.g.:",
      '# OTEL_SERVICE_NAME=nest-typeorm-users',
      '# OTEL_EXPORTER_OTLP_HEADERS=',
    ].join('\n'),
  ]
    .join('\n\n')
    .concat('\n');
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const settings = readSchema();
  const page = await format(renderPage(settings), { ...(await resolveConfig(PAGE)), filepath: PAGE });
  const envExample = renderEnvExample(settings);
  // Copied to .env as it is, it must load and change nothing.
  if (!isDeepStrictEqual(loadConfig(parseEnv(envExample)), loadConfig({}))) {
    throw new Error('.env.example as generated does not load as the defaults: a default or an @example is wrong');
  }
  const outputs: [string, string][] = [
    [PAGE, page],
    [ENV_EXAMPLE, envExample],
  ];
  const stale = outputs.filter(([file, text]) => {
    let current = '';
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      // missing: stale
    }
    return current !== text;
  });
  if (check) {
    if (stale.length > 0) {
      console.error(
        `${stale.map(([file]) => relative(ROOT, file)).join(' and ')} differ from src/config/app.config.ts: run npm run docs:config and commit the result`,
      );
      process.exit(1);
    }
    console.log(`docs/configuration.md and .env.example match the config schema (${settings.length} settings)`);
    return;
  }
  for (const [file, text] of stale) writeFileSync(file, text);
  console.log(
    `${settings.length} settings: ${stale.length ? `wrote ${stale.map(([file]) => relative(ROOT, file)).join(', ')}` : 'nothing changed'}`,
  );
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
