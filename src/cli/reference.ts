/**
 * The manual page (mailmule.1, roff) and the bash completion script, both generated from the
 * commands' own definitions (commander): a command, argument or option added in commands/ is in
 * both without another edit. `npm run build` runs this file (postbuild) and writes them under
 * dist/share/, where the release carries them and the Ansible role installs them:
 *
 *     dist/share/man/man1/mailmule.1
 *     dist/share/bash-completion/completions/mailmule
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command, Option } from 'commander';
import { EXIT } from './exit-codes';
import { buildProgram } from './main';
import { VERSION } from '../version';

/** Every command as its words after `mailmule` (queue, queue show, …), in the order `--help` lists them. */
export function commandPaths(program: Command): { words: string[]; command: Command }[] {
    const out: { words: string[]; command: Command }[] = [];
    const walk = (command: Command, words: string[]) => {
        for (const sub of command.commands) {
            out.push({ words: [...words, sub.name()], command: sub });
            walk(sub, [...words, sub.name()]);
        }
    };
    walk(program, []);
    return out;
}

/** Text for roff: backslashes doubled, a leading dot or quote made harmless, hyphens as minus signs where they are options. */
function roff(text: string): string {
    return text
        .replace(/\\/g, '\\e')
        .replace(/-/g, '\\-')
        .replace(/^([.'])/gm, '\\&$1');
}

function argumentsOf(command: Command): string {
    return command.registeredArguments.map(arg => (arg.required ? `\\fI${arg.name().toUpperCase()}\\fR` : `[\\fI${arg.name().toUpperCase()}\\fR]`)).join(' ');
}

function optionLines(option: Option): string[] {
    return ['.TP', `.B ${roff(option.flags)}`, roff(option.description + (option.defaultValue !== undefined ? ` (default: ${String(option.defaultValue)})` : ''))];
}

/** The EXIT table with the words of its doc comments, read from the source when it is there (README keeps the same table). */
const EXIT_MEANING: Record<keyof typeof EXIT, string> = {
    OK: 'success; for sync: every account succeeded (a run the budget stopped counts: the rest waits for the next run)',
    FAILURE: 'a runtime failure not listed below, e.g. a sync run that broke off as a whole',
    CONFIG: 'mailmule.yaml or accounts.yaml is invalid; each problem is on stderr as file:line:col',
    USAGE: 'bad arguments: unknown user or queue id, missing path, wrong usage',
    SYNC_SKIPPED: 'sync: the run was skipped: no link, the up hook failed, or the daily budget is spent',
    SYNC_BUSY: 'sync: another uplink run is in progress',
    SYNC_ACCOUNT_FAILED: 'sync: the run took place but at least one account failed',
    STORE_DAMAGED: "the store's database is damaged",
    LISTEN_FAILED: 'start: a listener could not be bound',
    STORE_MISMATCH: 'the store was refused untouched: the database does not belong with the message files beside it, or a newer mailmule wrote it'
};

/** The build's date: SOURCE_DATE_EPOCH when set (reproducible builds), else now. */
function sourceDate(): Date {
    const epoch = Number(process.env.SOURCE_DATE_EPOCH);
    return Number.isFinite(epoch) && epoch > 0 ? new Date(epoch * 1000) : new Date();
}

/** mailmule.1 in the man(7) macros. */
export function manPage(program: Command = buildProgram(), date = sourceDate()): string {
    const all = commandPaths(program);
    const isConfig = (option: Option) => option.long === '--config';
    const configOption = all.flatMap(({ command }) => command.options).find(isConfig);
    const withoutConfig = all.filter(({ command }) => !command.commands.length && !command.options.some(isConfig)).map(({ words }) => words.join(' '));
    const lines: string[] = [
        `.TH MAILMULE 1 "${date.toISOString().slice(0, 10)}" "mailmule ${VERSION}" "mailmule manual"`,
        '.SH NAME',
        `mailmule \\- ${roff(
            program
                .description()
                .replace(/^./, c => c.toLowerCase())
                .replace(/\.$/, '')
        )}`,
        '.SH SYNOPSIS',
        '.B mailmule',
        '\\fICOMMAND\\fR [\\fIOPTIONS\\fR]',
        '.br',
        '.B mailmule',
        '\\-\\-help | \\-\\-version',
        '.SH DESCRIPTION',
        'A mail gateway for a village LAN behind a slow, costly uplink: local IMAP and SMTP submission, an on\\-disk',
        "outbound queue, and batched sync with each user's upstream provider. One daemon",
        '.RB ( "mailmule start" ,',
        'run by systemd) serves the LAN; the other commands manage its users, queue and store, and talk to the',
        'running daemon over its control socket where they need it.',
        '.PP',
        'Most commands read',
        '.I /etc/mailmule/mailmule.yaml',
        'when it exists, else',
        '.IR ./config/mailmule.yaml ;',
        '.B \\-c',
        'names another. Every command takes',
        '.BR \\-\\-help ,',
        'and every one but',
        ...withoutConfig.flatMap((words, i) => [`.B ${words}`, i < withoutConfig.length - 1 ? ',' : '']).filter(Boolean),
        'takes:',
        '.TP',
        `.B ${roff(configOption?.flags ?? '-c, --config <file>')}`,
        roff(configOption?.description ?? 'the gateway config file'),
        '.SH COMMANDS'
    ];
    for (const { words, command } of all) {
        const args = argumentsOf(command);
        lines.push('.TP', args ? `\\fBmailmule ${words.join(' ')}\\fR ${args}` : `.B mailmule ${words.join(' ')}`);
        lines.push(roff(command.description()));
        const options = command.options.filter(option => option.long !== '--help' && !isConfig(option));
        if (options.length) {
            lines.push('.RS');
            for (const option of options) lines.push(...optionLines(option));
            lines.push('.RE');
        }
    }
    lines.push('.SH EXIT STATUS', 'The same for every command:');
    for (const [name, code] of Object.entries(EXIT).sort((a, b) => a[1] - b[1])) {
        lines.push('.TP', `.B ${code}`, roff(EXIT_MEANING[name as keyof typeof EXIT]));
    }
    lines.push(
        '.SH FILES',
        '.TP',
        '.I /etc/mailmule/mailmule.yaml',
        'the gateway: listeners, data directory, limits, logging, uplink schedule and budget',
        '.TP',
        '.I /etc/mailmule/accounts.yaml',
        'local users and their upstream accounts (mode 0600 when it holds credentials)',
        '.TP',
        '.I /var/lib/mailmule',
        'the store (mailmule.sqlite and the message files), the TLS pair and the control socket',
        '.SH ENVIRONMENT',
        '.TP',
        '.B JOURNAL_STREAM',
        'set by systemd; when it names stdout, log lines carry their syslog priority for the journal',
        '(log.format auto).',
        '.TP',
        '.B NO_COLOR',
        'no colour in log lines on a terminal.',
        '.SH SEE ALSO',
        '.BR journalctl (1),',
        '.BR systemctl (1);',
        'README.md in the installed release for the configuration reference.'
    );
    return lines.join('\n') + '\n';
}

/** A bash completion script: commands, subcommands, each command's options; files where an option takes a file or directory. */
export function bashCompletion(program: Command = buildProgram()): string {
    const paths = commandPaths(program);
    const top = paths.filter(entry => entry.words.length === 1).map(entry => entry.words[0]);
    const flagsOf = (option: Option) => [option.short, option.long].filter((flag): flag is string => !!flag);
    const allOptions = paths.flatMap(({ command }) => command.options);
    const withValue = [...new Set(allOptions.filter(option => option.required || option.optional).flatMap(flagsOf))];
    const withPath = [...new Set(allOptions.filter(option => /<(file|dir)>/.test(option.flags)).flatMap(flagsOf))];
    const subcommands = paths.filter(entry => entry.words.length === 2).map(entry => `'${entry.words.join(' ')}'`);
    const cases = paths.map(({ words, command }) => {
        const opts = [...command.commands.map(sub => sub.name()), ...command.options.map(option => option.long ?? option.short), '--help'];
        return `        '${words.join(' ')}') opts='${opts.join(' ')}' ;;`;
    });
    const pathArgs = paths.filter(({ command }) => command.registeredArguments.some(arg => /dir/i.test(arg.name()))).map(entry => entry.words.join(' '));
    return `# bash completion for mailmule, generated from its commands (src/cli/reference.ts); do not edit.
_mailmule() {
    local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} cmd='' word i opts
    case "$prev" in
        ${withPath.join('|')}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        ${withValue.filter(flag => !withPath.includes(flag)).join('|')}) COMPREPLY=(); return ;;
    esac
    # The command (and subcommand) typed so far; options and their values skipped.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=\${COMP_WORDS[i]}
        [[ $word == -* ]] && continue
        case "\${COMP_WORDS[i-1]}" in ${withValue.join('|')}) continue ;; esac
        if [[ -z $cmd ]]; then
            cmd=$word
        else
            case "$cmd $word" in ${subcommands.join('|')}) cmd="$cmd $word" ;; esac
        fi
    done
    case "$cmd" in
        '') opts='${[...top, '--help', '--version'].join(' ')}' ;;
${cases.join('\n')}
        *) opts='' ;;
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    # A directory argument (${pathArgs.join(', ')}).
    case "$cmd" in ${pathArgs.map(words => `'${words}'`).join('|')}) [[ $cur != -* ]] && COMPREPLY+=($(compgen -d -- "$cur")) ;; esac
    return 0
}
complete -F _mailmule mailmule
`;
}

/** Writes both under `dir` (dist/share when run by the build). */
export function writeReference(dir: string): string[] {
    const files = [
        { file: path.join(dir, 'man', 'man1', 'mailmule.1'), text: manPage() },
        { file: path.join(dir, 'bash-completion', 'completions', 'mailmule'), text: bashCompletion() }
    ];
    for (const { file, text } of files) {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, text);
    }
    return files.map(entry => entry.file);
}

if (require.main === module) {
    for (const file of writeReference(path.resolve(__dirname, '..', '..', 'share'))) console.log(`wrote ${file}`);
}
