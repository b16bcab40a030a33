/**
 * The version from package.json, on its own so that `mailmule --version` reads one small file
 * instead of loading the daemon that also reports it (IMAP ID, greetings).
 */
import fs from 'node:fs';
import path from 'node:path';

// Compiled to dist/src/version.js: package.json is two levels up, as it is from src/ in the tree.
export const VERSION: string = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version;
