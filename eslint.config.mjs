// ESLint: the recommended JavaScript rules and typescript-eslint's type-aware recommended rules,
// tuned to what this code does on purpose. `npm run lint` runs it; `.ci/run` runs it before the tests.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
    { ignores: ['dist/', 'data/', 'bench/.cache/', '.tmp/', 'build/', 'patches/'] },
    { linterOptions: { reportUnusedDisableDirectives: 'error' } },
    js.configs.recommended,
    tseslint.configs.recommendedTypeChecked,
    {
        languageOptions: {
            globals: globals.node,
            // tsconfig.json covers src, test and bench: one TypeScript program for all of them.
            parserOptions: { project: ['./tsconfig.json'], tsconfigRootDir: import.meta.dirname }
        },
        rules: {
            // Unused names are reported by tsc (noUnusedLocals, noUnusedParameters in tsconfig.json),
            // which also honours the `_name` convention for a callback's required-but-unused parameter.
            '@typescript-eslint/no-unused-vars': 'off',
            // A mail server checks for NUL and other control characters in protocol input on purpose.
            'no-control-regex': 'off',
            // imap-core is JavaScript whose values reach us as `any` (src/types/wildduck.d.ts), and
            // smtp-server, mailparser and better-sqlite3 hand back loosely typed objects: every use of
            // them would be reported. `no-explicit-any` still keeps new `any` out of our own code.
            '@typescript-eslint/no-unsafe-argument': 'off',
            '@typescript-eslint/no-unsafe-assignment': 'off',
            '@typescript-eslint/no-unsafe-call': 'off',
            '@typescript-eslint/no-unsafe-member-access': 'off',
            '@typescript-eslint/no-unsafe-return': 'off',
            // node:test's test() and describe() return promises that the runner itself awaits.
            '@typescript-eslint/no-floating-promises': [
                'error',
                { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] }
            ]
        }
    },
    {
        // The shipped code never depends on the tests or the benchmarks (tsconfig.src.json compiles it without them).
        files: ['src/**/*.ts'],
        ignores: ['src/**/*.test.ts'],
        rules: { 'no-restricted-imports': ['error', { patterns: [{ regex: '^(\\.\\./)+(test|bench)(/|$)', message: 'src must not import from test/ or bench/.' }] }] }
    },
    {
        // Declarations for untyped JavaScript modules: `any` is what those modules are.
        files: ['src/types/*.d.ts'],
        rules: { '@typescript-eslint/no-explicit-any': 'off' }
    },
    {
        // The configuration files themselves are plain JavaScript outside tsconfig.json.
        files: ['**/*.mjs', '**/*.js', '**/*.cjs'],
        extends: [tseslint.configs.disableTypeChecked]
    }
);
