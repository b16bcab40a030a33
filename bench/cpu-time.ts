/**
 * CPU seconds from /proc, for benchmarks run while other work shares the machine: wall time then
 * says little, the CPU a client and its server spent says what each side costs.
 *
 * A process's own time (utime + stime) plus that of its children it has reaped (cutime + cstime):
 * the benchmark's own entry counts every client command it ran and waited for (mbsync under
 * /usr/bin/time, the `mailmule sync` CLI), Dovecot's master counts its finished imap processes.
 */
import fs from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat (sysconf(_SC_CLK_TCK): 100 on Linux). */
const TICKS = 100;

/** utime + stime + cutime + cstime of one process, in seconds (0 when it is gone); `reapedOnly`: cutime + cstime alone. */
export function processCpuSeconds(pid: number | 'self', reapedOnly = false): number {
    let stat: string;
    try {
        stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
        return 0;
    }
    // The command name, in parentheses, may hold spaces: fields are counted after its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 to 17 of proc(5), counted from the state (field 3) here.
    return fields.slice(reapedOnly ? 13 : 11, 15).reduce((sum, ticks) => sum + Number(ticks), 0) / TICKS;
}

/** The same summed over a process and its live descendants (Dovecot: a master, its services and connections). */
export function treeCpuSeconds(rootPid: number): number {
    const parents = new Map<number, number>();
    for (const entry of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
            parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
        } catch {
            // Gone since the listing.
        }
    }
    const inTree = (pid: number): boolean => {
        for (let p: number | undefined = pid, depth = 0; p && depth < 20; p = parents.get(p), depth++) if (p === rootPid) return true;
        return false;
    };
    let sum = 0;
    for (const pid of parents.keys()) if (inTree(pid)) sum += processCpuSeconds(pid);
    return sum;
}
