// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', '.cache/**', 'data/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A lost await loses data: every promise is awaited, returned or explicitly voided.
      '@typescript-eslint/no-floating-promises': ['error', {
        // node:test's describe/it return promises the runner itself tracks.
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }],
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      'no-restricted-imports': ['error', {
        paths: [{ name: 'kafkajs', message: 'kafkajs is imported only by lib/kafka.ts.' }],
      }],
      'no-restricted-properties': ['error', {
        object: 'process', property: 'env', message: 'Read the environment only in lib/config.ts.',
      }],
    },
  },
  {
    files: ['lib/kafka.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['lib/config.ts', 'bin/**', 'test/**', 'bench/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
  },
);
