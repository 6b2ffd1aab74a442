/**
 * Jest runs TypeScript through ts-jest. oauth4webapi ships ESM only, so it is transformed too
 * (allowJs) instead of switching the whole suite to jest's experimental ESM mode.
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.[tj]s$': ['ts-jest', { tsconfig: { allowJs: true }, diagnostics: { warnOnly: false } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!oauth4webapi/)'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 30000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
