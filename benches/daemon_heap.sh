#!/usr/bin/env bash
# The daemon's live heap across bursts of idle connections, measured with valgrind's massif
# (what the node holds, as opposed to RSS, which also counts the pages glibc keeps after
# free). Starts `lnshard node` under massif, opens N idle TCP connections, holds them, closes
# them, twice, then stops the node and prints the heap before, at the peak and after each round.
#   benches/daemon_heap.sh [N]     (default 10000; needs valgrind and python3)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10000}"
cargo build --release --quiet --bin lnshard
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
port=$((20000 + RANDOM % 20000))
ulimit -n 65536 2>/dev/null || true
launched=$(python3 -c 'import time; print(time.time())')
valgrind --tool=massif --time-unit=ms --max-snapshots=400 --massif-out-file="$dir/massif.out" \
    target/release/lnshard node --data-dir "$dir/node" --listen "127.0.0.1:$port" \
    --control "127.0.0.1:$((port + 1))" > "$dir/node.log" 2>&1 &
for _ in $(seq 120); do [ -f "$dir/node/control.addr" ] && break; sleep 1; done
python3 - "$port" "$n" "$launched" > "$dir/marks.txt" <<'PY'
import socket, sys, time
port, n, t0 = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
def mark(what):
    # Milliseconds since valgrind was launched: massif's clock starts a little later, so
    # each mark falls a little after the moment it names in massif's time; every mark sits
    # in a quiet stretch of several seconds.
    print(f"{what} {int((time.time() - t0) * 1000)}", flush=True)
time.sleep(5)
mark("start")
for r in (1, 2):
    socks = []
    for _ in range(n):
        s = socket.socket(); s.connect(("127.0.0.1", port)); socks.append(s)
    time.sleep(10)
    mark(f"round{r}_held")
    for s in socks:
        s.close()
    time.sleep(15)
    mark(f"round{r}_after")
PY
target/release/lnshard cli --data-dir "$dir/node" stop > /dev/null
wait
# massif's snapshots (time ms, heap bytes): the live heap at each mark is the last snapshot
# before it; the peak is the largest of all.
python3 - "$dir/massif.out" "$dir/marks.txt" "$n" <<'PY'
import sys
snaps, t = [], None
for line in open(sys.argv[1]):
    if line.startswith("time="): t = int(line.split("=")[1])
    elif line.startswith("mem_heap_B="): snaps.append((t, int(line.split("=")[1])))
marks = [(w, int(ms)) for w, ms in (l.split() for l in open(sys.argv[2]) if l.strip())]
n = int(sys.argv[3])
def heap_at(ms):
    before = [b for t, b in snaps if t <= ms]
    return before[-1] if before else 0
at = {w: heap_at(ms) for w, ms in marks}
peak = max(b for _, b in snaps)
print(f"{n} idle connections, twice; live heap (B): " + ", ".join(f"{w} {b}" for w, b in at.items()) + f"; peak {peak}")
start = at["start"]
print(f"held - start: round 1 {at['round1_held'] - start} B ({(at['round1_held'] - start) / n:.0f} B per connection), round 2 {at['round2_held'] - start} B")
print(f"after - start: round 1 {at['round1_after'] - start} B, round 2 {at['round2_after'] - start} B")
PY
