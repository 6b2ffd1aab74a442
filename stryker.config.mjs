// @ts-check
/**
 * Mutation testing (`npm run mutate`; not part of `npm test`): StrykerJS mutates the pure logic and the
 * flows and runs the fast unit tests against each mutant. See docs/mutation-testing.md.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/** The unit project of jest.config.js: fast tests, no DynamoDB Local, no sandbox, no browser. */
const unit = require('./jest.config.js').projects.find(
  (/** @type {{displayName: string}} */ p) => p.displayName === 'unit',
);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'jest',
  jest: {
    projectType: 'custom',
    // package.json has no "jest" key: nothing is merged under this config (jest.config.js has projects).
    configFile: 'package.json',

    config: {
      ...unit,
      displayName: undefined,
      // Stryker asks jest for the tests related to the mutated files; jest follows imports only
      // through files under its roots, so functions/ must be one (it holds no tests), or a test that
      // reaches a module through another (refresh-handler.test.ts → flows/refresh-function-flow.ts
      // → core/refresh-protocol.ts) is left out and the mutants it kills are reported as survivors.
      roots: [...unit.roots, '<rootDir>/functions'],
      // Transpile only: type errors in a mutant are the typescript checker's job, not ts-jest's.
      transform: { '^.+\\.[tj]s$': ['ts-jest', { tsconfig: { allowJs: true, isolatedModules: true } }] },
    },
  },
  // Mutants that do not compile are set aside (CompileError) instead of being run. The checker's
  // program is functions/ only: the tests and infra/ would make every check slower.
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.mutate.json',
  // Stryker prepends `// @ts-nocheck` to the files it type-checks around; only the mutated code needs
  // it, and a doc test compares examples/connect-app.ts with docs/connect.md byte for byte.
  disableTypeChecks: 'functions/**/*.ts',
  mutate: ['functions/core/**/*.ts', 'functions/flows/**/*.ts'],
  coverageAnalysis: 'perTest',
  // One type-checker and one jest process: the 2 cores of a developer machine or CI runner.
  concurrency: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  thresholds: { high: 90, low: 80, break: null },
  // Mutants in module-level constants (the provider error texts, the inline style, the loopback
  // hosts...) need a fresh run of every test each: most of the run time for few mutants. Include
  // them with `MUTATE_STATIC=1 npm run mutate` (the CLI flag can only turn the option on).
  ignoreStatic: process.env.MUTATE_STATIC !== '1',
  tempDirName: '.stryker-tmp',
};
