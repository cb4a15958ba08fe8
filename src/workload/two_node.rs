//! LDK `bench_sends` workload: two nodes, one thread, one channel (being built).
