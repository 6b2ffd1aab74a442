/**
 * Error names survive minification: the Lambda bundles are minified, which renames classes, while
 * logs (`"name"`), log queries and Lambda's `errorType` need `ConfigError`, not `xt`. Each class names
 * itself with a literal; this test minifies the errors module as the bundles do and checks every
 * exported class still says its own name.
 */
import { buildSync } from 'esbuild';
import { join } from 'node:path';

type ErrorClass = new (...args: unknown[]) => Error & { code?: string };

/** The errors module, bundled and minified like the Lambda bundles, then loaded. */
function minifiedErrors(): Record<string, unknown> {
  const out = buildSync({
    entryPoints: [join(__dirname, '../../functions/core/errors.ts')],
    bundle: true,
    minify: true,
    format: 'cjs',
    platform: 'node',
    target: 'node22',
    write: false,
  });
  const module = { exports: {} as Record<string, unknown> };
  new Function('module', 'exports', 'require', out.outputFiles[0].text)(module, module.exports, require);
  return module.exports;
}

describe('Module: errors, minified', () => {
  const exported = Object.entries(minifiedErrors()).filter(
    (entry): entry is [string, ErrorClass] =>
      typeof entry[1] === 'function' && (entry[1] as ErrorClass).prototype instanceof Error,
  );

  it('is really minified: the classes lose their source names', () => {
    expect(exported.length).toBeGreaterThanOrEqual(20);
    const renamed = exported.filter(([name, ErrorClass]) => ErrorClass.name !== name);
    expect(renamed.length).toBeGreaterThan(exported.length / 2);
  });

  it('gives every error class its source name anyway', () => {
    const wrong = exported
      .map(([name, ErrorClass]) => [name, new ErrorClass('m', 'INVALID_ARGUMENT').name])
      .filter(([name, actual]) => name !== actual);
    expect(wrong).toEqual([]);
  });
});
