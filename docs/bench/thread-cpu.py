"""Samples a command's CPU use every 0.1 s from /proc (Linux): CPU seconds per thread name and the
mean number of cores busy in each second of the run; the command's stderr (TPMAP_TRACE's laps) is
written to thread-cpu.trace in the current folder, each line with the seconds since the start.
Threads without a name of their own carry the program's (its main thread, tpmap's writer).

    TPMAP_TRACE=1 python3 docs/bench/thread-cpu.py tpmap ingest --households D/households.parquet \
        --persons D/persons.parquet --out OUT --partition province --quiet
"""
import collections
import os
import subprocess
import sys
import threading
import time

cmd = sys.argv[1:]
if not cmd:
    sys.exit('usage: python3 thread-cpu.py COMMAND [ARG...]')
p = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
hz = os.sysconf('SC_CLK_TCK')
prev = {}
series = []
t0 = time.time()
bythread = collections.Counter()
lines = []
def rd():
    for l in p.stderr:
        lines.append((time.time() - t0, l.rstrip()))
threading.Thread(target=rd, daemon=True).start()
while p.poll() is None:
    tot = 0
    try:
        for tid in os.listdir(f'/proc/{p.pid}/task'):
            try:
                s = open(f'/proc/{p.pid}/task/{tid}/stat').read()
                name = s[s.index('(') + 1:s.rindex(')')]
                f = s[s.rindex(')') + 2:].split()
                v = int(f[11]) + int(f[12])
                d = v - prev.get(tid, 0)
                prev[tid] = v
                tot += d
                bythread[name] += d
            except (FileNotFoundError, ProcessLookupError):
                pass
    except FileNotFoundError:
        break
    series.append((time.time() - t0, tot / hz / 0.1))
    time.sleep(0.1)
print('wall', round(time.time() - t0, 2))
for name, v in bythread.most_common(12):
    print('thread', name, round(v / hz, 2), 's')
# one line per second: mean cores
sec = collections.defaultdict(list)
for t, c in series[1:]:
    sec[int(t)].append(c)
print(' '.join(f'{k}:{sum(v)/len(v):.2f}' for k, v in sorted(sec.items())))
with open('thread-cpu.trace', 'w') as f:
    for t, l in lines:
        f.write(f'{t:8.3f} {l}\n')
