/**
 * The database schema as an ordered list of migrations. `PRAGMA user_version` records how many
 * have run; each runs in its own transaction. Never edit a shipped migration: add a new one.
 */
export const MIGRATIONS: string[] = [
    // 1: users, mailboxes, messages stored once by content hash, and the change journal.
    `
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );

    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT,
        created_at INTEGER NOT NULL
    );

    CREATE TABLE mailboxes (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        special_use TEXT,
        subscribed INTEGER NOT NULL DEFAULT 1,
        uid_validity INTEGER NOT NULL,
        uid_next INTEGER NOT NULL DEFAULT 1,
        -- HIGHESTMODSEQ: raised by every change to the mailbox, journalled with the change.
        modify_index INTEGER NOT NULL DEFAULT 1,
        -- Custom keywords ever stored here, for FLAGS/PERMANENTFLAGS on SELECT (JSON array).
        keywords TEXT NOT NULL DEFAULT '[]',
        created_at INTEGER NOT NULL,
        UNIQUE (user_id, path)
    );

    -- One row per distinct raw message; the bytes live in blobs/ab/<hash>.
    CREATE TABLE blobs (
        hash TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        -- References from messages (and, later, queue entries). The row and file go at zero.
        refs INTEGER NOT NULL DEFAULT 0,
        mime_tree BLOB NOT NULL,
        envelope BLOB NOT NULL,
        bodystructure BLOB NOT NULL,
        header_lines BLOB NOT NULL, -- moved to blob_headers by migration 7
        search_headers TEXT NOT NULL,
        search_body TEXT NOT NULL,
        message_id TEXT,
        sent_date INTEGER,
        created_at INTEGER NOT NULL
    );

    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        flags TEXT NOT NULL DEFAULT '[]',
        seen INTEGER NOT NULL DEFAULT 0,
        deleted INTEGER NOT NULL DEFAULT 0,
        idate INTEGER NOT NULL,
        size INTEGER NOT NULL,
        blob_hash TEXT NOT NULL REFERENCES blobs(hash),
        message_id TEXT,
        -- Where the message came from upstream, for the sync (null for local mail).
        upstream_account TEXT,
        upstream_folder TEXT,
        upstream_uidvalidity INTEGER,
        upstream_uid INTEGER,
        UNIQUE (mailbox_id, uid)
    );
    CREATE INDEX messages_mailbox_modseq ON messages (mailbox_id, modseq);
    CREATE INDEX messages_mailbox_message_id ON messages (mailbox_id, message_id);
    CREATE INDEX messages_blob ON messages (blob_hash);
    CREATE UNIQUE INDEX messages_upstream ON messages (upstream_account, upstream_folder, upstream_uidvalidity, upstream_uid)
        WHERE upstream_uid IS NOT NULL;

    -- What happened to a mailbox, by modseq, so every other session (IDLE or not) catches up.
    CREATE TABLE journal (
        id INTEGER PRIMARY KEY,
        mailbox_id INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        command TEXT NOT NULL,
        uid INTEGER NOT NULL,
        flags TEXT,
        ignore_session TEXT,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX journal_mailbox_modseq ON journal (mailbox_id, modseq);
    CREATE INDEX journal_created ON journal (created_at);
    `,
    // 2: the outbound queue. One row per submitted message that has recipients beyond the Pi,
    // with one row per such recipient so a partial delivery is never repeated.
    `
    CREATE TABLE queue (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        -- The upstream account (its address) whose SMTP server relays this message.
        account TEXT NOT NULL,
        mail_from TEXT NOT NULL,
        blob_hash TEXT NOT NULL REFERENCES blobs(hash),
        size INTEGER NOT NULL,
        message_id TEXT,
        subject TEXT,
        state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'deferred', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX queue_state ON queue (state, next_attempt_at);

    CREATE TABLE queue_recipients (
        queue_id INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
        address TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
        last_error TEXT,
        PRIMARY KEY (queue_id, address)
    );
    `,
    // 3: the uplink. Per upstream folder sync state, what the provider last told us about each
    // synced message's flags (so local changes can be pushed as a diff), deletions to push, and
    // run accounting.
    `
    CREATE TABLE sync_folders (
        account TEXT NOT NULL,
        folder TEXT NOT NULL,
        uid_validity INTEGER NOT NULL,
        -- Highest upstream UID whose headers have been seen.
        last_uid INTEGER NOT NULL DEFAULT 0,
        highest_modseq INTEGER NOT NULL DEFAULT 0,
        last_flag_scan INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (account, folder)
    );

    -- Headers seen upstream whose bodies have not been downloaded yet (budget, or a cut link).
    CREATE TABLE sync_pending (
        account TEXT NOT NULL,
        folder TEXT NOT NULL,
        uid_validity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        size INTEGER NOT NULL,
        message_id TEXT,
        idate INTEGER NOT NULL,
        flags TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (account, folder, uid_validity, uid)
    );
    CREATE INDEX sync_pending_size ON sync_pending (account, size);

    ALTER TABLE messages ADD COLUMN upstream_flags TEXT;
    -- A stub stands in for a message too large to download whole; it records the original folder.
    ALTER TABLE messages ADD COLUMN stub INTEGER NOT NULL DEFAULT 0;

    -- Synced messages expunged locally, to delete upstream when the account allows it.
    CREATE TABLE sync_deletions (
        account TEXT NOT NULL,
        folder TEXT NOT NULL,
        uid_validity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (account, folder, uid_validity, uid)
    );

    CREATE TABLE uplink_runs (
        id INTEGER PRIMARY KEY,
        trigger TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        status TEXT NOT NULL,
        message TEXT
    );

    CREATE TABLE uplink_run_accounts (
        run_id INTEGER NOT NULL REFERENCES uplink_runs(id) ON DELETE CASCADE,
        account TEXT NOT NULL,
        bytes_sent INTEGER NOT NULL DEFAULT 0,
        bytes_received INTEGER NOT NULL DEFAULT 0,
        messages_sent INTEGER NOT NULL DEFAULT 0,
        messages_received INTEGER NOT NULL DEFAULT 0,
        duration_ms INTEGER NOT NULL DEFAULT 0,
        errors TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (run_id, account)
    );
    `,
    // 4: the Sent copy mailmule filed itself (the only one a client's APPEND may replace), and
    // each message's sent day in the Date header's own time zone (SENTON/SENTBEFORE/SENTSINCE).
    `
    ALTER TABLE messages ADD COLUMN filed_by_gateway INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE blobs ADD COLUMN sent_day INTEGER;
    UPDATE blobs SET sent_day = sent_date - (sent_date % 86400000) WHERE sent_date IS NOT NULL;
    `,
    // 5: subscriptions are names, apart from mailboxes: RFC 3501 6.3.6 keeps a name subscribed
    // after its mailbox is deleted (LIST-EXTENDED then shows it \NonExistent, RFC 5258).
    `
    CREATE TABLE subscriptions (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        PRIMARY KEY (user_id, path)
    ) WITHOUT ROWID;
    INSERT INTO subscriptions (user_id, path) SELECT user_id, path FROM mailboxes WHERE subscribed = 1;
    ALTER TABLE mailboxes DROP COLUMN subscribed;
    `,
    // 6: \Recent (RFC 3501 2.3.2), as Dovecot keeps it: messages from first_recent_uid up are recent
    // for the next session to select the mailbox (or one that has it selected when they arrive),
    // which moves it past them. Mail that was already here before the upgrade is not recent.
    `
    ALTER TABLE mailboxes ADD COLUMN first_recent_uid INTEGER NOT NULL DEFAULT 1;
    UPDATE mailboxes SET first_recent_uid = uid_next;
    `,
    // 7: the root header lines in a narrow table of their own. In blobs they sat behind the
    // multi-kilobyte MIME tree, so a header-fields FETCH of 10,000 messages (what Thunderbird and
    // K-9 send to list a folder) walked every row's overflow pages to reach them; read from here
    // the same rows cost about half (docs/benchmarks.md). One row per blobs row, same hash.
    `
    CREATE TABLE blob_headers (
        hash TEXT PRIMARY KEY,
        header_lines BLOB NOT NULL
    );
    INSERT INTO blob_headers (hash, header_lines) SELECT hash, header_lines FROM blobs;
    ALTER TABLE blobs DROP COLUMN header_lines;
    -- Rows left without a reference are looked for at every start (blob-rows.ts deleteOrphanBlobs):
    -- without an index that read the whole table (0.3 s for 10,000 messages on this VM).
    CREATE INDEX blobs_unreferenced ON blobs (hash) WHERE refs <= 0;
    `,
    // 8: an upstream message's identity within its account (src/uplink/identity.ts), so a
    // message already home from another folder or Gmail label is linked, not downloaded again.
    // Rows from before are given the Message-ID form ("mid <id> <size> <idate>") they would get
    // today; a stub's size is its own, so it matches nothing, as it should.
    `
    ALTER TABLE messages ADD COLUMN upstream_key TEXT;
    ALTER TABLE sync_pending ADD COLUMN upstream_key TEXT;
    UPDATE messages SET upstream_key = 'mid ' || message_id || ' ' || size || ' ' || idate
        WHERE upstream_account IS NOT NULL AND message_id IS NOT NULL AND stub = 0;
    UPDATE sync_pending SET upstream_key = 'mid ' || message_id || ' ' || size || ' ' || idate WHERE message_id IS NOT NULL;
    CREATE INDEX messages_upstream_key ON messages (upstream_account, upstream_key) WHERE upstream_key IS NOT NULL;
    `,
    // 9: a queue that reports on itself. A recipient's bounce is remembered (bounced_at), so an
    // entry retried after it failed never bounces twice; and a provider's refusal of an account's
    // login is an account problem, kept until a login succeeds, with when its owner was told.
    `
    ALTER TABLE queue_recipients ADD COLUMN bounced_at INTEGER;
    UPDATE queue_recipients SET bounced_at = (SELECT updated_at FROM queue WHERE queue.id = queue_recipients.queue_id) WHERE state = 'failed';

    CREATE TABLE account_problems (
        account TEXT PRIMARY KEY,
        error TEXT NOT NULL,
        since INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        notified_at INTEGER
    );
    `,
    // 10: where each upstream folder lands locally, kept once chosen (src/uplink/folders.ts), so a
    // later change of the mapping (hierarchy on servers whose delimiter is not "/", collisions)
    // never moves mail that is already home. The mapping changed only for paths with "." or an
    // "INBOX." / "INBOX/" prefix, which it used to keep whole as the local name: rows from before
    // with such a path get the user's mailbox of that name, or of that name under one level (a
    // second account's folder); of several, the one holding most of the folder's messages. Where
    // else its messages are does not count: the user may have moved them (into Archive, Trash).
    // The others get theirs at their next run, where they map as before.
    `
    ALTER TABLE sync_folders ADD COLUMN local_path TEXT;
    UPDATE sync_folders SET local_path = (
        SELECT mb.path FROM mailboxes mb
        WHERE mb.user_id = (SELECT x.user_id FROM messages m JOIN mailboxes x ON x.id = m.mailbox_id WHERE m.upstream_account = sync_folders.account LIMIT 1)
          AND (mb.path = sync_folders.folder
               OR (substr(mb.path, -length(sync_folders.folder) - 1) = '/' || sync_folders.folder
                   AND instr(substr(mb.path, 1, length(mb.path) - length(sync_folders.folder) - 1), '/') = 0))
        ORDER BY (SELECT COUNT(*) FROM messages m WHERE m.mailbox_id = mb.id AND m.upstream_account = sync_folders.account AND m.upstream_folder = sync_folders.folder) DESC,
                 length(mb.path)
        LIMIT 1
    )
    WHERE instr(folder, '.') > 0 OR upper(substr(folder, 1, 6)) IN ('INBOX.', 'INBOX/');
    `,
    // 11: the SMTP intake's spool (src/store/queue.ts). A submission's message files are written
    // without an fsync of their own; their bytes go into this table in the same commit as the
    // submission's rows, so the one WAL fsync of a group commit makes a whole batch durable. A row
    // is deleted once one filesystem sync (syncfs) has put the files it covers on disk; rows left
    // at start-up are written back to their files, with fsync, before anything reads them.
    // AUTOINCREMENT: ids only grow, so "delete what the last sync covered" (id <= the highest
    // id seen before it) never deletes a newer row that reused an id.
    `
    CREATE TABLE intake_spool (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        hash TEXT NOT NULL UNIQUE,
        raw BLOB NOT NULL
    );
    `,
    // 12: each message's header summary (header-summary.ts): the root header lines of the fields
    // clients list folders by, keyed by the message row, whose ids follow UID order within a
    // mailbox, so a header-fields FETCH of 1:* reads the (mailbox_id, uid) index and these rows in
    // order (blob_headers is keyed by content hash: one random B-tree lookup per message). Filled
    // for existing messages at start-up (fillHeaderSummaries); a message without a row is answered
    // from its whole header.
    `
    CREATE TABLE message_headers (
        id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        -- Which of LIST_HEADER_FIELDS the lines hold, one bit each.
        fields INTEGER NOT NULL,
        -- Those lines as imap-core parses them, joined with CRLF; each character is a byte (latin1).
        lines TEXT NOT NULL
    );
    `,
    // 13: no copy of the root header in the database (issue 17: it was 2.1 KB of 16.4 KB per
    // message). A request for the whole header, or for fields outside the summary, reads the
    // header of the message file (message-files.ts readRootHeaderLines); THREAD's references
    // come from the summary.
    `
    DROP TABLE blob_headers;
    `,
    // 14: MIME trees are stored zstd-compressed (blob-rows.ts packMimeTree). Rows from before are
    // compressed at start-up, a batch per transaction, while this marker is there (compressOldTrees).
    `
    INSERT INTO meta (key, value) VALUES ('pending_tree_compression', '1') ON CONFLICT (key) DO NOTHING;
    `,
    // 15: the search text packed, headers and body in one Brotli stream (search-text.ts; issue 17:
    // the two plain columns were 4.2 KB of 14.4 KB per message). New rows leave search_headers and
    // search_body empty; rows from before are packed at start-up, a batch per transaction, while
    // this marker is there (packOldSearchText), and are searched as they are until then. A new
    // store has none to pack.
    `
    ALTER TABLE blobs ADD COLUMN search_text BLOB;
    INSERT INTO meta (key, value) SELECT 'pending_search_packing', '1' WHERE EXISTS (SELECT 1 FROM blobs) ON CONFLICT (key) DO NOTHING;
    `,
    // 16: small messages in their row, Brotli-packed, instead of a file each (inline-messages.ts;
    // issue 17: a 4.6 KB message took 6.6 KB of blocks as a file). Last column, so reading the
    // others never reads it. Existing small files are moved in at start-up while the marker is there.
    `
    ALTER TABLE blobs ADD COLUMN raw BLOB;
    INSERT INTO meta (key, value) SELECT 'pending_inline_messages', '1' WHERE EXISTS (SELECT 1 FROM blobs) ON CONFLICT (key) DO NOTHING;
    `
];
