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
valgrind --tool=massif --time-unit=ms --max-snapshots=400 --massif-out-file="$dir/massif.out" \
    target/release/lnshard node --data-dir "$dir/node" --listen "127.0.0.1:$port" \
    --control "127.0.0.1:$((port + 1))" > "$dir/node.log" 2>&1 &
for _ in $(seq 120); do [ -f "$dir/node/control.addr" ] && break; sleep 1; done
python3 - "$port" "$n" > "$dir/marks.txt" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
t0 = time.time()
def mark(what):
    print(f"{what} {int((time.time() - t0) * 1000)}", flush=True)
time.sleep(5)
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
# massif's snapshots (time ms, heap bytes): print the plateaus (a value held by 3 or more
# consecutive snapshots: start-up done, connections held, after each round) and the peak.
python3 - "$dir/massif.out" "$n" <<'PY'
import sys
snaps, t = [], None
for line in open(sys.argv[1]):
    if line.startswith("time="): t = int(line.split("=")[1])
    elif line.startswith("mem_heap_B="): snaps.append((t, int(line.split("=")[1])))
plateaus, run = [], []
for _, b in snaps:
    if run and b != run[-1]:
        if len(run) >= 3: plateaus.append(run[0])
        run = []
    run.append(b)
if len(run) >= 3: plateaus.append(run[0])
plateaus = [b for b in plateaus if b > 0]
merged = [b for i, b in enumerate(plateaus) if i == 0 or b != plateaus[i - 1]]
peak = max(b for _, b in snaps)
print(f"{sys.argv[2]} idle connections, twice; live heap plateaus in order (B): {merged}; peak {peak} B")
if merged:
    print(f"peak - first plateau = {peak - merged[0]} B ({(peak - merged[0]) / int(sys.argv[2]):.0f} B per connection); last plateau - first = {merged[-1] - merged[0]} B")
PY
