/**
 * Checks every relative link of the repository's markdown (README.md, CONTRIBUTING.md, BENCHMARKS.md,
 * docs/**): the file or folder it names exists, and a `#fragment` names a heading of the target page
 * (GitHub's anchor rules). Prints each broken link as `file:line: target` and exits 1 if there is one.
 * Links in code blocks and inline code are not links; absolute URLs are not checked (no network in CI).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = join(__dirname, '..');
const SKIP = new Set(['node_modules', 'dist', 'coverage', '.data', '.git', 'results']);

/** Markdown files under `dir`, recursively, minus build output and dependencies. */
function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (SKIP.has(entry.name)) return [];
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return markdownFiles(path);
    return entry.name.endsWith('.md') ? [path] : [];
  });
}

/** The text outside fenced code blocks, line by line (code lines become empty: line numbers hold). */
function proseLines(text: string): string[] {
  let fenced = false;
  return text.split('\n').map((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return '';
    }
    return fenced ? '' : line;
  });
}

/** GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces → `-`, repeats numbered. */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseLines(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const text = heading
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1') // a link's text
      .replace(/<[^>]+>/g, '');
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

function main(): void {
  const broken: string[] = [];
  const files = markdownFiles(ROOT);
  for (const file of files) {
    const lines = proseLines(readFileSync(file, 'utf8'));
    lines.forEach((line, index) => {
      const prose = line.replace(/`[^`]*`/g, '');
      const targets = [
        ...[...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]),
        ...[...prose.matchAll(/^\s*\[[^\]]+\]:\s+(\S+)/g)].map((m) => m[1]),
      ];
      for (const target of targets) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, …
        const [path, fragment] = target.split('#', 2);
        const resolved = path ? resolve(dirname(file), decodeURIComponent(path)) : file;
        const where = `${relative(ROOT, file)}:${index + 1}: ${target}`;
        if (!existsSync(resolved)) {
          broken.push(`${where} (no such file)`);
          continue;
        }
        if (fragment && resolved.endsWith('.md') && statSync(resolved).isFile()) {
          if (!anchorsOf(readFileSync(resolved, 'utf8')).has(fragment)) broken.push(`${where} (no such heading)`);
        }
      }
    });
  }
  if (broken.length > 0) {
    console.error(`Broken relative links in the docs:\n${broken.join('\n')}`);
    process.exit(1);
  }
  console.log(`relative links in ${files.length} markdown files resolve`);
}

main();
