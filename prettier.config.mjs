// Prettier, set to the style the code was written in: 4-space indents, single quotes, long lines
// (200 measured as the width that changes the fewest existing lines), no parentheses around a
// single arrow parameter, no trailing commas. `npm run format` writes, `npm run format:check` checks.
/** @type {import('prettier').Config} */
export default {
    tabWidth: 4,
    printWidth: 200,
    singleQuote: true,
    arrowParens: 'avoid',
    trailingComma: 'none',
    quoteProps: 'preserve'
};
