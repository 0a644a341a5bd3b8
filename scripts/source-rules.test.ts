/**
 * Rules on the source that no linter here checks. `f?.(x, draw())` skips `draw()` when `f` is
 * absent, so the program does something else depending on whether a hook is attached (the bug
 * where mixing drew the negative prior's noise only while a trace was attached): the arguments of
 * an optional call must be free of side effects — no call, `new`, assignment, `++`/`--`, `await`,
 * `yield` or `delete` outside a function written in them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const FOLDERS = ['src', 'workers', 'scripts', 'models', 'e2e', 'bench', 'test-support'];

function sourceFiles(folder: string): string[] {
  const dir = path.join(ROOT, folder);
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true, recursive: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isFile() && /\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

const ASSIGNMENTS = new Set([
  ts.SyntaxKind.EqualsToken,
  ts.SyntaxKind.PlusEqualsToken,
  ts.SyntaxKind.MinusEqualsToken,
  ts.SyntaxKind.AsteriskEqualsToken,
  ts.SyntaxKind.AsteriskAsteriskEqualsToken,
  ts.SyntaxKind.SlashEqualsToken,
  ts.SyntaxKind.PercentEqualsToken,
  ts.SyntaxKind.LessThanLessThanEqualsToken,
  ts.SyntaxKind.GreaterThanGreaterThanEqualsToken,
  ts.SyntaxKind.GreaterThanGreaterThanGreaterThanEqualsToken,
  ts.SyntaxKind.AmpersandEqualsToken,
  ts.SyntaxKind.BarEqualsToken,
  ts.SyntaxKind.CaretEqualsToken,
  ts.SyntaxKind.AmpersandAmpersandEqualsToken,
  ts.SyntaxKind.BarBarEqualsToken,
  ts.SyntaxKind.QuestionQuestionEqualsToken,
]);

/** The first expression in `node` that does something when evaluated, or null. */
function sideEffectIn(node: ts.Node): ts.Node | null {
  if (ts.isArrowFunction(node) || ts.isFunctionExpression(node)) return null; // not run here
  if (
    ts.isCallExpression(node) ||
    ts.isNewExpression(node) ||
    ts.isTaggedTemplateExpression(node) ||
    ts.isAwaitExpression(node) ||
    ts.isYieldExpression(node) ||
    ts.isDeleteExpression(node) ||
    (ts.isBinaryExpression(node) && ASSIGNMENTS.has(node.operatorToken.kind)) ||
    ((ts.isPrefixUnaryExpression(node) || ts.isPostfixUnaryExpression(node)) &&
      (node.operator === ts.SyntaxKind.PlusPlusToken || node.operator === ts.SyntaxKind.MinusMinusToken))
  ) {
    return node;
  }
  return ts.forEachChild(node, sideEffectIn) ?? null;
}

/** `file:line: text` for every optional call whose arguments have a side effect. */
function optionalCallsWithSideEffects(fileName: string, text: string): string[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isCallExpression(node) && ts.isOptionalChain(node)) {
      for (const argument of node.arguments) {
        const effect = sideEffectIn(argument);
        if (effect) {
          const { line } = source.getLineAndCharacterOfPosition(effect.getStart(source));
          found.push(`${path.relative(ROOT, fileName)}:${line + 1}: ${effect.getText(source)}`);
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('source rules', () => {
  it('finds a side effect in an optional call’s arguments, and none where there is none', () => {
    expect(
      optionalCallsWithSideEffects('a.ts', "trace?.('noise', generator.randn(shape), shape);"),
    ).toHaveLength(1);
    expect(optionalCallsWithSideEffects('a.ts', 'hooks.onStep?.(i++);')).toHaveLength(1);
    expect(optionalCallsWithSideEffects('a.ts', 'a?.b.c(x = 1);')).toHaveLength(1);
    expect(optionalCallsWithSideEffects('a.ts', 'f?.(await next());')).toHaveLength(1);
    expect(optionalCallsWithSideEffects('a.ts', "trace?.('noise', noise, [n, d]);")).toEqual([]);
    expect(optionalCallsWithSideEffects('a.ts', 'f?.({ a: x, b: [y] }, () => draw());')).toEqual([]);
    expect(optionalCallsWithSideEffects('a.ts', 'f(draw());')).toEqual([]);
  });

  it('no optional call in the project has a side effect in its arguments', () => {
    const found = FOLDERS.flatMap(sourceFiles).flatMap((file) =>
      optionalCallsWithSideEffects(file, readFileSync(file, 'utf8')),
    );
    expect(found).toEqual([]);
  });
});
