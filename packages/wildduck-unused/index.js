'use strict';
// Stands in for a dependency of @zone-eu/wildduck that mailmule does not install (package.json
// "overrides"; packages/README.md). imap-core never loads it: if something does, fail loudly here
// rather than run without it.
throw new Error('mailmule does not install this WildDuck dependency (package.json overrides point it at packages/wildduck-unused); imap-core is not expected to load it');
