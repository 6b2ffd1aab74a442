/**
 * Jest runs TypeScript through ts-jest. oauth4webapi ships ESM only, so it is transformed too
 * (allowJs) instead of switching the whole suite to jest's experimental ESM mode.
 *
 * Three projects, so a run starts only the real parts the selected files need: jest triggers a
 * project's globalSetup only when at least one of its test files runs. `npx jest test/unit` starts
 * no DynamoDB Local; the integration and e2e files share one.
 * @type {import('jest').Config}
 */
const common = {
  testEnvironment: 'node',
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.[tj]s$': ['ts-jest', { tsconfig: { allowJs: true }, diagnostics: { warnOnly: false } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!oauth4webapi/)'],
  testTimeout: 30000,
};

module.exports = {
  testTimeout: 30000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
  projects: [
    { ...common, displayName: 'unit', roots: ['<rootDir>/test/unit'] },
    { ...common, displayName: 'infra', roots: ['<rootDir>/test/infra'] },
    {
      ...common,
      displayName: 'integration',
      roots: ['<rootDir>/test/integration', '<rootDir>/test/e2e'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
  ],
};
