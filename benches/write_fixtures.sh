#!/usr/bin/env bash
# Writes the fixture files a test printed as `FIXTURE <file> <hex>` lines into DIR
# (lightning-core does no IO, not even in its tests, so its fixture writers print).
# Usage: LNSHARD_WRITE_FIXTURES=1 cargo test -p lightning-core --lib -- --ignored --nocapture \
#            write_monitor | benches/write_fixtures.sh crates/lightning-core/tests/fixtures/v4
set -euo pipefail
dir="${1:?usage: write_fixtures.sh DIR}"
mkdir -p "$dir"
grep '^FIXTURE ' | while read -r _ name hex; do
    printf '%s' "$hex" | python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read()))' > "$dir/$name"
done
