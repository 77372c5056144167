#!/usr/bin/env python3
"""wakeups.py: read `perf sched timehist -w` text of one weft-bench W2 run
and print where a chained step's time goes between threads.

Processes are recognised by their threads' names: the coordinator has an
"engine" thread, a worker "weft-slot" threads, weft-bench its own name. Prints
wake-ups per step (waker process and thread -> woken process and thread)
and the median of three segments of each step, told apart by wake-ups:

  assign -> slot    the engine writes an assignment to a worker's socket
                    (it wakes that worker's poll thread) until a worker
                    thread wakes a slot thread to run it;
  slot -> engine    until a coordinator thread last wakes the engine
                    before the next assignment: the result's arrival (the
                    worker's reply to the assignment wakes it earlier);
  engine -> assign  until the engine writes the next assignment: the
                    result applied, committed with its fsync, released.

With --tree, only the processes descending from ROOT_PID count (FORKS_FILE:
"parent child" lines, thread or process ids, from sched_process_fork
events): other clusters on the machine (another test's, say) are left
out.

Usage: wakeups.py TIMEHIST_FILE STEPS [--tree FORKS_FILE ROOT_PID]
"""
import collections
import re
import statistics
import sys

LINE = re.compile(r'^\s*([\d.]+)\s+\[\d+\]\s+(\S+)\[(\d+)/(\d+)\]\s+'
                  r'awakened: (\S+)\[(\d+)(?:/(\d+))?\]')


def open_text(path):
    """path opened for reading, or exit naming it."""
    try:
        return open(path, errors='replace')
    except OSError as e:
        sys.exit('wakeups.py: cannot read %s: %s' % (path, e.strerror))


def read_tree(path, root):
    """The ids descending from root (root included) in FORKS_FILE."""
    children = collections.defaultdict(list)
    with open_text(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                sys.exit('wakeups.py: %s:%d: want "parent child" ids, not '
                         '%r' % (path, n, line.strip()[:60]))
            children[parts[0]].append(parts[1])
    tree, todo = set(), [root]
    while todo:
        p = todo.pop()
        if p not in tree:
            tree.add(p)
            todo.extend(children[p])
    return tree


def main():
    args = sys.argv[1:]
    tree = None
    if len(args) == 5 and args[2] == '--tree' and args[4].isdigit():
        tree = read_tree(args[3], args[4])
        args = args[:2]
    if len(args) != 2 or not args[1].isdigit():
        sys.exit(__doc__.split('\n\n')[-1].strip())
    path, steps = args[0], int(args[1])
    wakes = []   # (time us, waker comm, waker pid, woken comm, woken pid)
    comms = collections.defaultdict(set)
    with open_text(path) as f:
        for line in f:
            m = LINE.match(line)
            if m is None:
                continue
            t, comm, _tid, pid, wcomm, _wtid, wpid = m.groups()
            if tree is not None:
                pid = pid if pid in tree else None
                wpid = wpid if wpid in tree else None
            wakes.append((float(t) * 1e6, comm, pid, wcomm, wpid))
            if pid is not None:
                comms[pid].add(comm)
            if wpid is not None:
                comms[wpid].add(wcomm)
    role = {}
    for pid, names in comms.items():
        if 'engine' in names:
            role[pid] = 'coordinator'
        elif 'weft-slot' in names:
            role[pid] = 'worker'
        elif 'weft-bench' in names:
            role[pid] = 'weft-bench'
    coord = [p for p, r in role.items() if r == 'coordinator']
    if len(coord) != 1 or steps <= 0:
        sys.exit('wakeups.py: %s: want one coordinator (threads named '
                 '"engine"), found %d' % (path, len(coord)))
    coord = coord[0]

    count = collections.Counter()
    for _t, comm, pid, wcomm, wpid in wakes:
        if pid in role and wpid in role:
            count[(role[pid], comm, role[wpid], wcomm)] += 1
    total = sum(count.values())
    print('wake-ups per step (%d steps; %.1f in all):' % (steps,
                                                          total / steps))
    for (r, c, wr, wc), n in count.most_common(16):
        print('  %5.2f  %-11s %-15s -> %-11s %s' % (n / steps, r, c, wr, wc))

    segs = {'assign -> slot': [], 'slot -> engine': [],
            'engine -> assign': []}
    state, t_a, t_b, t_d = 'A', 0.0, 0.0, 0.0
    for t, comm, pid, wcomm, wpid in wakes:
        assign = (pid == coord and comm == 'engine' and
                  wcomm == 'nng:poll:epoll' and role.get(wpid) == 'worker')
        if assign:
            if state == 'D':
                segs['slot -> engine'].append(t_d - t_b)
                segs['engine -> assign'].append(t - t_d)
            state, t_a = 'B', t
        elif state == 'B' and wcomm == 'weft-slot' and \
                role.get(wpid) == 'worker':
            segs['assign -> slot'].append(t - t_a)
            state, t_b = 'C', t
        elif state in ('C', 'D') and wpid == coord and wcomm == 'engine':
            # The last wake before the next assignment: the result (the
            # worker's reply to the assignment comes first).
            state, t_d = 'D', t
    print('segments of a step, microseconds (median, p25-p75):')
    for name, vals in segs.items():
        if len(vals) < 8:
            print('  %-17s too few (%d)' % (name, len(vals)))
            continue
        q = statistics.quantiles(vals, n=4)
        print('  %-17s %6.0f  (%.0f-%.0f, %d steps)' % (
            name, statistics.median(vals), q[0], q[2], len(vals)))


if __name__ == '__main__':
    main()
