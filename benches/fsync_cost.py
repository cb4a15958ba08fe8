#!/usr/bin/env python3
# The cost of one durable 2 KiB write on the disk under the system temporary directory
# (TMPDIR), four ways, median microseconds over N writes each:
#   append + fdatasync               (FsStore's WAL frame before preallocation)
#   overwrite + fdatasync            (FsStore's WAL frame once preallocated: written zeros)
#   fallocate'd + write + fdatasync  (preallocated by fallocate: unwritten extents, whose first
#                                     write is a metadata change; FsStore writes zeros instead)
#   tmp file + fsync + rename + fsync of the directory   (LDK's FilesystemStore write)
# Usage: python3 benches/fsync_cost.py [N]    (default 500)
import os, shutil, statistics, sys, tempfile, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 500
d = tempfile.mkdtemp()
buf = os.urandom(2048)


def timed(f):
    ts = []
    for i in range(N):
        t = time.perf_counter()
        f(i)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e6


try:
    fd = os.open(os.path.join(d, "wal"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    print("append+fdatasync             %.0f us" % timed(lambda i: (os.write(fd, buf), os.fdatasync(fd))))
    os.close(fd)
    fd = os.open(os.path.join(d, "pre"), os.O_RDWR | os.O_CREAT, 0o600)
    os.write(fd, b"\0" * (2048 * N))
    os.fsync(fd)
    print("overwrite+fdatasync          %.0f us" % timed(lambda i: (os.pwrite(fd, buf, 2048 * i), os.fdatasync(fd))))
    os.close(fd)
    fd = os.open(os.path.join(d, "falloc"), os.O_RDWR | os.O_CREAT, 0o600)
    os.posix_fallocate(fd, 0, 2048 * N)
    os.fsync(fd)
    print("fallocated+write+fdatasync   %.0f us" % timed(lambda i: (os.pwrite(fd, buf, 2048 * i), os.fdatasync(fd))))
    os.close(fd)
    dfd = os.open(d, os.O_RDONLY)

    def ldk(i):
        p = os.path.join(d, "monitor.tmp")
        f = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(f, buf)
        os.fsync(f)
        os.close(f)
        os.rename(p, os.path.join(d, "monitor"))
        os.fsync(dfd)

    print("tmp+fsync+rename+fsync(dir)  %.0f us" % timed(ldk))
    os.close(dfd)
finally:
    shutil.rmtree(d)
