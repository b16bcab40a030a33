/**
 * THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 section 4) over messages given in
 * sequence order. Pure logic: the caller loads the records and maps UIDs to the response.
 */
import { baseSubject } from './sort-keys';

export interface ThreadMessage {
    uid: number;
    /** `<id>` of this message, or null. */
    messageId: string | null;
    /** References (or In-Reply-To), oldest first. */
    references: string[];
    subject: string;
    /** Sent date in ms, INTERNALDATE when the Date header is missing or invalid. */
    date: number;
}

export interface ThreadNode {
    /** null for a dummy (a message referred to but not present). */
    uid: number | null;
    children: ThreadNode[];
}

interface Container {
    message: ThreadMessage | null;
    parent: Container | null;
    children: Container[];
}

/** Threads sorted by sent date, ties by sequence (= UID) order; a dummy takes its first child's. */
function sortKey(container: Container): [number, number] {
    if (container.message) return [container.message.date, container.message.uid];
    return container.children.length ? sortKey(container.children[0]) : [0, 0];
}

function sortContainers(list: Container[]): void {
    for (const container of list) sortContainers(container.children);
    list.sort((a, b) => {
        const [dateA, uidA] = sortKey(a);
        const [dateB, uidB] = sortKey(b);
        return dateA - dateB || uidA - uidB;
    });
}

function toNodes(list: Container[]): ThreadNode[] {
    return list.map(container => ({ uid: container.message?.uid ?? null, children: toNodes(container.children) }));
}

/** ORDEREDSUBJECT: by base subject then date; the first of each subject is the parent of the rest. */
export function threadByOrderedSubject(messages: readonly ThreadMessage[]): ThreadNode[] {
    const keyed = messages.map(message => ({ message, base: baseSubject(message.subject).base }));
    keyed.sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0) || a.message.date - b.message.date || a.message.uid - b.message.uid);
    const roots: Container[] = [];
    let current: Container | null = null;
    let currentBase: string | null = null;
    for (const { message, base } of keyed) {
        const container: Container = { message, parent: null, children: [] };
        if (current && base === currentBase) {
            container.parent = current;
            current.children.push(container);
        } else {
            current = container;
            currentBase = base;
            roots.push(container);
        }
    }
    roots.sort((a, b) => a.message!.date - b.message!.date || a.message!.uid - b.message!.uid);
    return toNodes(roots);
}

function isAncestor(candidate: Container, of: Container): boolean {
    for (let node: Container | null = of; node; node = node.parent) {
        if (node === candidate) return true;
    }
    return false;
}

function link(parent: Container, child: Container): void {
    child.parent = parent;
    parent.children.push(child);
}

function unlink(child: Container): void {
    if (child.parent) {
        child.parent.children = child.parent.children.filter(sibling => sibling !== child);
        child.parent = null;
    }
}

/** Step 4: drop empty dummies; promote a dummy's children, except several at the root. */
function prune(list: Container[], atRoot: boolean, parent: Container | null): Container[] {
    const out: Container[] = [];
    for (const container of list) {
        container.children = prune(container.children, false, container);
        if (container.message) {
            out.push(container);
        } else if (container.children.length && (!atRoot || container.children.length === 1)) {
            for (const child of container.children) {
                child.parent = parent;
                out.push(child);
            }
        } else if (container.children.length) {
            out.push(container);
        }
    }
    return out;
}

/** REFERENCES (RFC 5256 section 4 steps 1 to 6). */
export function threadByReferences(messages: readonly ThreadMessage[]): ThreadNode[] {
    const byId = new Map<string, Container>();
    const all: Container[] = [];
    const containerFor = (id: string): Container => {
        let container = byId.get(id);
        if (!container) {
            container = { message: null, parent: null, children: [] };
            byId.set(id, container);
            all.push(container);
        }
        return container;
    };

    // Step 1: link each message under its last reference, and the references to each other.
    for (const message of messages) {
        let container: Container;
        const existing = message.messageId ? byId.get(message.messageId) : undefined;
        if (message.messageId && (!existing || !existing.message)) {
            container = containerFor(message.messageId);
        } else {
            // No Message-ID, or a duplicate: a unique one of its own.
            container = { message: null, parent: null, children: [] };
            all.push(container);
        }
        container.message = message;

        let previous: Container | null = null;
        for (const id of message.references) {
            const reference = containerFor(id);
            if (previous && !reference.parent && !isAncestor(reference, previous)) {
                link(previous, reference);
            }
            previous = reference;
        }
        unlink(container);
        if (previous && !isAncestor(container, previous)) {
            link(previous, container);
        }
    }

    // Step 2 to 4: the root set, pruned.
    let roots = prune(
        all.filter(container => !container.parent),
        true,
        null
    );

    // Step 5: gather threads whose roots share a base subject.
    const subjects = new Map<Container, ReturnType<typeof baseSubject>>();
    const subjectOf = (container: Container) => {
        // A dummy root takes the subject of its first child (RFC 5256 step 5.A).
        const message = container.message ?? container.children[0]?.message;
        let subject = message ? subjects.get(container) : undefined;
        if (!subject) {
            subject = baseSubject(message?.subject ?? '');
            subjects.set(container, subject);
        }
        return subject;
    };
    const table = new Map<string, Container>();
    for (const root of roots) {
        const { base } = subjectOf(root);
        if (!base) continue;
        const other = table.get(base);
        if (!other || (!root.message && other.message) || (other.message && root.message && subjectOf(other).isReply && !subjectOf(root).isReply)) {
            table.set(base, root);
        }
    }
    for (const root of roots) {
        const subject = subjectOf(root);
        const other = subject.base ? table.get(subject.base) : undefined;
        if (!other || other === root || root.parent) continue;
        if (!other.message && !root.message) {
            for (const child of root.children) link(other, child);
            root.children = [];
        } else if (!other.message) {
            link(other, root);
        } else if (!root.message) {
            link(root, other);
            table.set(subject.base, root);
        } else if (!subjectOf(other).isReply && subject.isReply) {
            link(other, root);
        } else {
            const dummy: Container = { message: null, parent: null, children: [] };
            link(dummy, other);
            link(dummy, root);
            table.set(subject.base, dummy);
        }
    }
    // What is left at the top: each root's outermost container, once (order is set in step 6).
    const tops = new Set<Container>();
    for (const root of roots) {
        let top = root;
        while (top.parent) top = top.parent;
        if (top.message || top.children.length) tops.add(top);
    }
    roots = [...tops];

    // Step 6: sort every level by sent date.
    sortContainers(roots);
    return toNodes(roots);
}
