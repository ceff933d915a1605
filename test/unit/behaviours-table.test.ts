/**
 * Keeps docs/tcp-behaviours.md true: every test id in its tables names exactly one test whose
 * title starts with `[id]`, every test so tagged anywhere under test/ is in the tables, and every
 * packetdrill script named in the Scripts column exists under test/packetdrill/.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DOC = join(ROOT, 'docs/tcp-behaviours.md');
const ID = /^[a-z0-9]+(?:[.-][a-z0-9]+)+$/;

interface Row {
  line: number;
  behaviour: string;
  rfc: string;
  ids: string[];
  /** Paths under test/packetdrill/ from the Scripts column (empty when the row has none). */
  scripts: string[];
  /** The Scripts column's text, or undefined for a table without that column. */
  scriptsCell: string | undefined;
}

/** The rows of every table in the document whose header is `| Behaviour | RFC | Tests |` (optionally `| Scripts |`). */
export function tableRows(markdown: string): Row[] {
  const rows: Row[] = [];
  let inTable = false;
  let hasScripts = false;
  markdown.split('\n').forEach((text, i) => {
    const line = text.trim();
    if (!line.startsWith('|')) {
      inTable = false;
      return;
    }
    const cells = line.slice(1, line.endsWith('|') ? -1 : undefined).split('|').map((c) => c.trim());
    if (cells[0] === 'Behaviour' && cells[1] === 'RFC' && cells[2] === 'Tests') {
      inTable = true;
      hasScripts = cells[3] === 'Scripts';
      return;
    }
    if (!inTable || cells.every((c) => /^:?-+:?$/.test(c))) return;
    const ids = [...(cells[2] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    const scriptsCell = hasScripts ? (cells[3] ?? '') : undefined;
    const scripts = [...(scriptsCell ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    rows.push({ line: i + 1, behaviour: cells[0] ?? '', rfc: cells[1] ?? '', ids, scripts, scriptsCell });
  });
  return rows;
}

/** Every `it`/`test` whose title starts with `[tag]`, in every test file: tag -> files. */
export function taggedTests(source: string, file: string, into: Map<string, string[]>): void {
  const re = /\b(?:it|test)(?:\.(?:only|skip|concurrent|sequential|fails))*\(\s*(['"`])\[([^\]\n]+)\]/g;
  for (const m of source.matchAll(re)) {
    const list = into.get(m[2]!) ?? [];
    list.push(file);
    into.set(m[2]!, list);
  }
}

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...testFiles(path));
    else if (entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out.sort();
}

describe('docs/tcp-behaviours.md', () => {
  const rows = tableRows(readFileSync(DOC, 'utf8'));
  const tags = new Map<string, string[]>();
  const self = fileURLToPath(import.meta.url);
  // (This file is skipped: its own self-test below quotes sample tags.)
  for (const f of testFiles(join(ROOT, 'test'))) if (f !== self) taggedTests(readFileSync(f, 'utf8'), relative(ROOT, f), tags);

  it('has tables, and every row names a behaviour, an RFC section and at least one well-formed test id', () => {
    expect(rows.length).toBeGreaterThan(20);
    for (const r of rows) {
      const where = `docs/tcp-behaviours.md:${r.line}`;
      expect(r.behaviour, where).not.toBe('');
      expect(r.rfc, where).toMatch(/\bRFC \d+/);
      expect(r.ids.length, where).toBeGreaterThan(0);
      for (const id of r.ids) expect(id, where).toMatch(ID);
    }
  });

  it('every id in the table is the tag of exactly one test', () => {
    const problems: string[] = [];
    for (const r of rows) {
      for (const id of r.ids) {
        const files = tags.get(id) ?? [];
        if (files.length !== 1) problems.push(`line ${r.line}: \`${id}\` tags ${files.length} tests ${files.join(', ')}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every script in the Scripts column exists; a row without one says why ("— (simulation)")', () => {
    const problems: string[] = [];
    for (const r of rows) {
      if (r.scriptsCell === undefined) {
        problems.push(`line ${r.line}: the table has no Scripts column`);
        continue;
      }
      if (r.scripts.length === 0 && !/^— \(.+\)$/.test(r.scriptsCell)) problems.push(`line ${r.line}: no scripts, and no "— (why)" instead`);
      for (const s of r.scripts) {
        if (!s.endsWith('.pkt') || !existsSync(join(ROOT, 'test/packetdrill', s))) problems.push(`line ${r.line}: \`${s}\` is not a script under test/packetdrill/`);
      }
    }
    expect(problems).toEqual([]);
    expect(rows.filter((r) => r.scripts.length > 0).length).toBeGreaterThan(rows.length / 2);
  });

  it('every tagged test is listed in the table', () => {
    const listed = new Set(rows.flatMap((r) => r.ids));
    const missing = [...tags.entries()].filter(([id]) => !listed.has(id)).map(([id, files]) => `[${id}] in ${files.join(', ')}`);
    expect(missing).toEqual([]);
  });

  it('the checker itself: finds tags in any quote style and table rows only under the right header', () => {
    const found = new Map<string, string[]>();
    taggedTests(
      `it('[a.b] x', f); it("[c-d.e] don't", f); test(\`[f.g] y\`, f); it.skip('[h.i] z', f); it('no tag', f); describe('[j.k] not a test', f)`,
      'x.test.ts',
      found,
    );
    expect([...found.keys()]).toEqual(['a.b', 'c-d.e', 'f.g', 'h.i']);
    const md = '| Behaviour | RFC | Tests |\n|---|---|---|\n| B1 | RFC 1 §2 | `a.b`, `c-d.e` |\n\n| Other | Table |\n|---|---|\n| x | `z.z` |\n';
    expect(tableRows(md)).toEqual([{ line: 3, behaviour: 'B1', rfc: 'RFC 1 §2', ids: ['a.b', 'c-d.e'], scripts: [], scriptsCell: undefined }]);
    const md4 = '| Behaviour | RFC | Tests | Scripts |\n|---|---|---|---|\n| B1 | RFC 1 | `a.b` | `x/y.pkt`, `z.pkt` |\n';
    expect(tableRows(md4)[0]).toMatchObject({ ids: ['a.b'], scripts: ['x/y.pkt', 'z.pkt'], scriptsCell: '`x/y.pkt`, `z.pkt`' });
  });
});
