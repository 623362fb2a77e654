/*
 * lazyfs: a FUSE filesystem that loses what was not synced when the power goes off.
 *
 * A test harness in the spirit of Jepsen's LazyFS. It passes a backing directory through to a
 * mount point, but keeps every unsynced change only in this daemon's memory (file data and sizes)
 * or undoable (the namespace), so that a "power off" leaves the backing directory exactly as a
 * disk would be after a crash of a machine whose OS honoured fsync and nothing more.
 *
 *   gcc -O2 -Wall -o lazyfs lazyfs.c $(pkg-config fuse3 --cflags --libs)
 *   lazyfs [-f] [-s] [-o OPTIONS] BACKING_DIR MOUNT_POINT
 *
 * Options (besides libfuse's; each also as an environment variable, the option winning):
 *   -o crash_writeback=P   (LAZYFS_CRASH_WRITEBACK) at a SIGUSR1 power off, first write each dirty
 *                          4 KiB page to the backing file with probability P, and keep each file's
 *                          pending size with probability P: the kernel had written those back
 *                          before the crash. Default 0: nothing unsynced survives.
 *   -o crash_seed=N        (LAZYFS_CRASH_SEED) the seed of those draws. Each draw is a hash of
 *                          (seed, inode number, page index): no dependence on thread timing.
 *   -o backing_sync=0|1    (LAZYFS_BACKING_SYNC) whether an fsync here also fsyncs the backing
 *                          file/directory (default 1). 0 is faster and loses nothing in the model;
 *                          it only matters if the real machine crashes.
 *   -o die_with_parent     power off (and detach the mount) when the parent process dies, so that
 *                          a crashed test JVM does not leave a live mount behind.
 *
 * DATA. A write (write(2), or the kernel's writeback of pages dirtied through a MAP_SHARED
 * writable mapping, which reaches a FUSE file system as plain writes as long as direct_io is off,
 * as here) goes to a per-file overlay: a hash map of 4 KiB pages, each holding the page's whole
 * current content. Reads merge the overlay over the backing file. fsync and fdatasync (FUSE fsync,
 * which is also where msync(MS_SYNC) and FileChannel.force end up: the kernel writes the dirty
 * mapped pages back first, then sends FSYNC) write the file's whole overlay and size to the
 * backing file and fsync it. The whole file: FUSE's fsync does not carry msync's range.
 * fdatasync is treated like fsync (size included, as it must be for the data to be readable).
 * An overlay belongs to the file (inode), not to a handle: every handle and the kernel's writeback
 * share it, an fsync on any handle persists all of it, and a close persists nothing.
 *
 * SIZE. The size a file has after a power off is its size at its last fsync: an unsynced
 * extension (write past the end, ftruncate/setLength up, fallocate) is lost, and so is an
 * unsynced shrink (ftruncate down, O_TRUNC): the old bytes come back. That is the state at the
 * last sync, the natural strict model. The torn mode adds the other outcomes POSIX allows: with
 * probability P the pending size is kept (the inode was written back) while each page is
 * independently kept or not, so an extended file can end in zeros (holes where the data never
 * made it), an O_TRUNC-then-rewrite can come back empty, and a page written back past the synced
 * end extends the file to cover it (the gap reads as zeros). Sizes are applied with ftruncate,
 * so the backing files stay sparse (an LMDB file sized to a large map costs nothing).
 * fallocate: mode 0 and FALLOC_FL_KEEP_SIZE only change the pending size (no space is reserved);
 * FALLOC_FL_PUNCH_HOLE and FALLOC_FL_ZERO_RANGE zero the range in the overlay; other modes fail
 * with EOPNOTSUPP.
 *
 * NAMESPACE. The backing directory always holds the current names; every change since the last
 * fsync of the directories it touched is recorded in an undo journal and undone at a power off:
 *   - a file, symlink, hard link, special file or directory created in D vanishes unless D was
 *     fsynced (FUSE fsyncdir: FileChannel.open(D, READ).force(true)) after it; a directory takes
 *     its whole subtree with it. An fsync of the file itself does not make its name durable.
 *   - an unlinked file or removed directory comes back (with its synced content) unless its
 *     directory was fsynced after; until then it waits in a hidden trash.
 *   - a rename (or RENAME_EXCHANGE) is undone as a whole (the old names come back, and the file
 *     it replaced, from the trash) unless every directory it touched (source and destination
 *     parent) was fsynced after it: a rename across directories needs both fsynced.
 *   - chmod, chown and utimens go straight to the backing files and survive.
 * The journal and the trash live in BACKING/.lazyfs, which the mount hides (listings, lookups).
 * The journal is also written to a file, so that after a kill -9 of this daemon (which cannot run
 * any code), the next mount of the same backing directory undoes the namespace at start-up.
 *
 * POWER OFF. SIGUSR1: the daemon takes every lock (operations in flight finish first, so the
 * power goes off between two operations), optionally writes the torn subset (crash_writeback),
 * undoes the unsynced namespace changes, empties the trash and exits at once (status 0) without
 * flushing anything else. kill -9: all unsynced data dies with the process (it only ever lived
 * here); the namespace is undone when the next daemon starts on the same backing directory.
 * After either, unmount lazily (fusermount3 -u -z MOUNT_POINT): the kernel's page cache of the
 * old mount goes with its superblock, and a new mount starts with a cold cache.
 * A clean unmount (fusermount3 -u, SIGTERM, SIGINT) is a clean shutdown: every overlay is synced
 * and every namespace change kept, as an OS does at shutdown.
 *
 * The virtual file MOUNT_POINT/.lazyfs-stats (not listed) reads as
 * "dirty_pages=N dirty_files=N pending_namespace_ops=N" (what a power off would lose now).
 * There are no extended attributes: a FUSE file system that has them is asked for
 * security.capability before every write, a second round trip per write.
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE

#include <fuse.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define STATE_DIR ".lazyfs"
#define STATS_FILE ".lazyfs-stats"
#define STATS_FH 1

/* ---------------------------------------------------------------- options and global state */

struct options {
    double crash_writeback;
    unsigned long crash_seed;
    int backing_sync;
    int die_with_parent;
};

static struct options opt = {0.0, 0, 1, 0};

static struct {
    char *backing;     /* absolute path of the backing directory */
    char *mountpoint;  /* absolute path of the mount point */
    int rootfd;        /* the backing directory */
    int statefd;       /* BACKING/.lazyfs */
    int trashfd;       /* BACKING/.lazyfs/trash */
    int journalfd;     /* BACKING/.lazyfs/journal, O_APPEND */
    dev_t rootdev;
    ino_t rootino;
    pid_t parent;
    /* Lock order: glock, then a node's lock. An operation holding a node's lock never takes glock. */
    pthread_mutex_t glock; /* the namespace, the journal, the node table, node refcounts */
    uint64_t seq;          /* journal sequence numbers */
} g = {.glock = PTHREAD_MUTEX_INITIALIZER};

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t ignored = write(2, "lazyfs: ", 8);
    ignored = write(2, buf, n);
    (void)ignored;
}

/* ---------------------------------------------------------------- page buffers */

/*
 * Overlay pages come from 2 MiB slabs (transparent huge pages where the kernel allows) and go back
 * to a free list, never to the OS: in a VM a first touch of a 4 KiB page can cost ~10 us, more than
 * the rest of a write.
 */
#define SLAB (2u << 20)
static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;
static void *free_pages;  /* a list threaded through the free pages' first word */
static char *slab_next, *slab_end;

static char *page_alloc(void) {
    pthread_mutex_lock(&alloc_lock);
    char *p = free_pages;
    if (p) {
        free_pages = *(void **)p;
    } else {
        if (slab_next == slab_end) {
            char *s = mmap(NULL, 2 * SLAB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (s == MAP_FAILED) {
                pthread_mutex_unlock(&alloc_lock);
                return NULL;
            }
            char *aligned = (char *)(((uintptr_t)s + SLAB - 1) & ~(uintptr_t)(SLAB - 1));
            if (aligned > s) munmap(s, aligned - s);
            munmap(aligned + SLAB, s + 2 * SLAB - (aligned + SLAB));
            madvise(aligned, SLAB, MADV_HUGEPAGE);
            slab_next = aligned;
            slab_end = aligned + SLAB;
        }
        p = slab_next;
        slab_next += PAGE;
    }
    pthread_mutex_unlock(&alloc_lock);
    return p;
}

static void page_free(char *p) {
    if (!p) return;
    pthread_mutex_lock(&alloc_lock);
    *(void **)p = free_pages;
    free_pages = p;
    pthread_mutex_unlock(&alloc_lock);
}

/* ---------------------------------------------------------------- page map */

/* Open addressing, linear probing; keys are page index + 1 (0 marks an empty slot). */
struct pmap {
    uint64_t *keys;
    char **vals;
    size_t cap; /* a power of two, or 0 */
    size_t n;
};

static inline size_t pm_hash(uint64_t k, size_t cap) {
    return (size_t)((k * 0x9E3779B97F4A7C15ULL) >> 17) & (cap - 1);
}

static char *pm_get(const struct pmap *m, uint64_t idx) {
    if (m->cap == 0) return NULL;
    uint64_t k = idx + 1;
    for (size_t i = pm_hash(k, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == k) return m->vals[i];
        if (m->keys[i] == 0) return NULL;
    }
}

static int pm_grow(struct pmap *m) {
    size_t ncap = m->cap ? m->cap * 2 : 64;
    uint64_t *nk = calloc(ncap, sizeof *nk);
    char **nv = calloc(ncap, sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i]) {
            size_t j = pm_hash(m->keys[i], ncap);
            while (nk[j]) j = (j + 1) & (ncap - 1);
            nk[j] = m->keys[i];
            nv[j] = m->vals[i];
        }
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return 0;
}

/* Inserts a page that is not in the map yet. */
static int pm_put(struct pmap *m, uint64_t idx, char *page) {
    if ((m->n + 1) * 2 > m->cap) {
        int r = pm_grow(m);
        if (r) return r;
    }
    uint64_t k = idx + 1;
    size_t i = pm_hash(k, m->cap);
    while (m->keys[i]) i = (i + 1) & (m->cap - 1);
    m->keys[i] = k;
    m->vals[i] = page;
    m->n++;
    return 0;
}

/* Frees every page with index >= first (all of them for first == 0) and rebuilds the table. */
static void pm_drop_from(struct pmap *m, uint64_t first) {
    if (m->n == 0) return;
    size_t oldcap = m->cap;
    uint64_t *ok = m->keys;
    char **ov = m->vals;
    size_t kept = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (ok[i] && ok[i] - 1 < first) kept++;
    }
    if (kept == m->n) return;
    m->keys = NULL;
    m->vals = NULL;
    m->cap = 0;
    m->n = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (!ok[i]) continue;
        if (ok[i] - 1 >= first) {
            page_free(ov[i]);
        } else if (pm_put(m, ok[i] - 1, ov[i])) {
            page_free(ov[i]); /* out of memory while shrinking: nothing sensible left to do */
        }
    }
    free(ok);
    free(ov);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The page indexes in the map, sorted; the caller frees. */
static uint64_t *pm_sorted_keys(const struct pmap *m) {
    uint64_t *ks = malloc((m->n ? m->n : 1) * sizeof *ks);
    if (!ks) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i]) ks[j++] = m->keys[i] - 1;
    }
    qsort(ks, j, sizeof *ks, cmp_u64);
    return ks;
}

/* ---------------------------------------------------------------- nodes (one per backing inode) */

struct node {
    dev_t dev;
    ino_t ino;
    int fd;               /* the backing file, O_RDWR (O_RDONLY if that failed) */
    int refs;             /* open handles and temporary references; under glock */
    pthread_mutex_t lock; /* the fields below */
    off_t size;           /* the size as the mount shows it */
    off_t backing_size;   /* the backing file's size (as of the last sync) */
    off_t valid_end;      /* backing bytes at or past this read as zeros (an unsynced shrink) */
    struct pmap pages;    /* the dirty pages; bytes past size are zero */
    struct timespec mtime;
    int has_mtime;
    struct node *next;    /* hash chain */
};

#define NBUCKETS 4096
static struct node *nodes[NBUCKETS];

static inline size_t node_bucket(dev_t dev, ino_t ino) {
    return (size_t)((ino * 0x9E3779B97F4A7C15ULL) ^ dev) % NBUCKETS;
}

static struct node *node_find(dev_t dev, ino_t ino) { /* glock held */
    for (struct node *n = nodes[node_bucket(dev, ino)]; n; n = n->next) {
        if (n->dev == dev && n->ino == ino) return n;
    }
    return NULL;
}

static inline int node_clean(const struct node *n) { /* n->lock held */
    return n->pages.n == 0 && n->size == n->backing_size && n->valid_end == n->backing_size;
}

static void node_unlink_free(struct node *n) { /* glock held, n->lock not held, refs == 0 */
    struct node **pp = &nodes[node_bucket(n->dev, n->ino)];
    while (*pp != n) pp = &(*pp)->next;
    *pp = n->next;
    pm_drop_from(&n->pages, 0);
    free(n->pages.keys);
    free(n->pages.vals);
    close(n->fd);
    pthread_mutex_destroy(&n->lock);
    free(n);
}

/* Frees a node nobody uses once it holds nothing unsynced, or once its file is gone for good. */
static void node_maybe_free(struct node *n) { /* glock held */
    if (n->refs > 0) return;
    pthread_mutex_lock(&n->lock);
    int drop = node_clean(n);
    if (!drop) {
        struct stat st;
        drop = fstat(n->fd, &st) == 0 && st.st_nlink == 0;
    }
    pthread_mutex_unlock(&n->lock);
    if (drop) node_unlink_free(n);
}

static void node_put(struct node *n) {
    pthread_mutex_lock(&g.glock);
    n->refs--;
    node_maybe_free(n);
    pthread_mutex_unlock(&g.glock);
}

/* Takes a reference to the node of an open backing file; consumes fd. glock held. */
static struct node *node_adopt(int fd, int *err) {
    struct stat st;
    if (fstat(fd, &st) < 0) {
        *err = -errno;
        close(fd);
        return NULL;
    }
    struct node *n = node_find(st.st_dev, st.st_ino);
    if (n) {
        close(fd);
        n->refs++;
        return n;
    }
    n = calloc(1, sizeof *n);
    if (!n) {
        close(fd);
        *err = -ENOMEM;
        return NULL;
    }
    n->dev = st.st_dev;
    n->ino = st.st_ino;
    n->fd = fd;
    n->refs = 1;
    pthread_mutex_init(&n->lock, NULL);
    n->size = n->backing_size = n->valid_end = st.st_size;
    size_t b = node_bucket(n->dev, n->ino);
    n->next = nodes[b];
    nodes[b] = n;
    return n;
}

/* ---------------------------------------------------------------- node data operations (n->lock held) */

static int pread_full(int fd, char *buf, size_t len, off_t off) {
    while (len > 0) {
        ssize_t r = pread(fd, buf, len, off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) { /* past the backing file's end: zeros */
            memset(buf, 0, len);
            return 0;
        }
        buf += r;
        len -= r;
        off += r;
    }
    return 0;
}

/* Reads [off, off+len) of what the backing file contributes: its bytes below valid_end, zeros after. */
static int backing_read(struct node *n, char *buf, size_t len, off_t off) {
    size_t from_backing = 0;
    if (off < n->valid_end) {
        from_backing = (size_t)(n->valid_end - off) < len ? (size_t)(n->valid_end - off) : len;
        int r = pread_full(n->fd, buf, from_backing, off);
        if (r) return r;
    }
    memset(buf + from_backing, 0, len - from_backing);
    return 0;
}

/* The overlay page idx, created from the backing file if absent (unless the caller overwrites all of it). */
static char *node_page(struct node *n, uint64_t idx, int whole, int *err) {
    char *p = pm_get(&n->pages, idx);
    if (p) return p;
    p = page_alloc();
    if (!p) {
        *err = -ENOMEM;
        return NULL;
    }
    if (!whole) {
        int r = backing_read(n, p, PAGE, (off_t)idx * PAGE);
        if (r) {
            page_free(p);
            *err = r;
            return NULL;
        }
    }
    int r = pm_put(&n->pages, idx, p);
    if (r) {
        page_free(p);
        *err = r;
        return NULL;
    }
    return p;
}

static int node_read(struct node *n, char *buf, size_t len, off_t off) {
    if (off >= n->size) return 0;
    if ((off_t)len > n->size - off) len = n->size - off;
    size_t done = 0;
    off_t run_start = -1; /* a run of bytes with no overlay page, read from the backing file at once */
    while (done < len) {
        off_t pos = off + done;
        uint64_t idx = pos / PAGE;
        size_t in_page = pos % PAGE;
        size_t chunk = PAGE - in_page;
        if (chunk > len - done) chunk = len - done;
        char *p = pm_get(&n->pages, idx);
        if (p) {
            if (run_start >= 0) {
                int r = backing_read(n, buf + (run_start - off), pos - run_start, run_start);
                if (r) return r;
                run_start = -1;
            }
            memcpy(buf + done, p + in_page, chunk);
        } else if (run_start < 0) {
            run_start = pos;
        }
        done += chunk;
    }
    if (run_start >= 0) {
        int r = backing_read(n, buf + (run_start - off), off + len - run_start, run_start);
        if (r) return r;
    }
    return (int)len;
}

static int node_write(struct node *n, const char *buf, size_t len, off_t off) {
    size_t done = 0;
    while (done < len) {
        off_t pos = off + done;
        uint64_t idx = pos / PAGE;
        size_t in_page = pos % PAGE;
        size_t chunk = PAGE - in_page;
        if (chunk > len - done) chunk = len - done;
        int err = 0;
        char *p = node_page(n, idx, in_page == 0 && chunk == PAGE, &err);
        if (!p) return done > 0 ? (int)done : err;
        memcpy(p + in_page, buf + done, chunk);
        done += chunk;
        if (pos + (off_t)chunk > n->size) n->size = pos + chunk;
    }
    clock_gettime(CLOCK_REALTIME, &n->mtime);
    n->has_mtime = 1;
    return (int)len;
}

static int node_truncate(struct node *n, off_t size) {
    if (size < 0) return -EINVAL;
    if (size < n->size) {
        pm_drop_from(&n->pages, (size + PAGE - 1) / PAGE);
        if (size % PAGE) {
            char *p = pm_get(&n->pages, size / PAGE);
            if (p) memset(p + size % PAGE, 0, PAGE - size % PAGE);
        }
        if (size < n->valid_end) n->valid_end = size;
    }
    n->size = size;
    clock_gettime(CLOCK_REALTIME, &n->mtime);
    n->has_mtime = 1;
    return 0;
}

/* Zeroes [off, end) (end <= size) in the overlay. */
static int node_zero(struct node *n, off_t off, off_t end) {
    while (off < end) {
        uint64_t idx = off / PAGE;
        size_t in_page = off % PAGE;
        size_t chunk = PAGE - in_page;
        if ((off_t)chunk > end - off) chunk = end - off;
        char *p = pm_get(&n->pages, idx);
        if (!p && (off_t)idx * PAGE >= n->valid_end) {
            /* nothing in the overlay and nothing valid below: it already reads as zeros */
        } else {
            int err = 0;
            p = node_page(n, idx, 0, &err);
            if (!p) return err;
            memset(p + in_page, 0, chunk);
        }
        off += chunk;
    }
    return 0;
}

/* Writes the pages listed in ks (sorted) to the backing file, clipped to size; *end gets the end of the last. */
static int write_pages(struct node *n, const uint64_t *ks, size_t count, off_t *end) {
    struct iovec iov[256];
    size_t i = 0;
    while (i < count) {
        size_t j = i, niov = 0;
        off_t start = (off_t)ks[i] * PAGE, bytes = 0;
        while (j < count && niov < 256 && ks[j] == ks[i] + (j - i)) {
            off_t pstart = (off_t)ks[j] * PAGE;
            if (pstart >= n->size) break;
            size_t plen = n->size - pstart < PAGE ? (size_t)(n->size - pstart) : PAGE;
            iov[niov].iov_base = pm_get(&n->pages, ks[j]);
            iov[niov].iov_len = plen;
            niov++;
            bytes += plen;
            j++;
        }
        if (niov == 0) { /* a page past the size: there are none, but do not loop on one */
            i++;
            continue;
        }
        off_t pos = start;
        size_t k = 0;
        while (k < niov) {
            ssize_t w = pwritev(n->fd, iov + k, (int)(niov - k), pos);
            if (w < 0) {
                if (errno == EINTR) continue;
                return -errno;
            }
            pos += w;
            while (k < niov && (size_t)w >= iov[k].iov_len) {
                w -= iov[k].iov_len;
                k++;
            }
            if (k < niov) {
                iov[k].iov_base = (char *)iov[k].iov_base + w;
                iov[k].iov_len -= w;
            }
        }
        if (start + bytes > *end) *end = start + bytes;
        i = j;
    }
    return 0;
}

/* fsync: the overlay and the size go to the backing file, which is then synced. */
static int node_sync(struct node *n, int datasync) {
    if (node_clean(n)) return 0;
    off_t cur = n->backing_size;
    if (n->valid_end < n->backing_size) {
        if (ftruncate(n->fd, n->valid_end) < 0) return -errno;
        cur = n->valid_end;
    }
    uint64_t *ks = pm_sorted_keys(&n->pages);
    if (!ks) return -ENOMEM;
    int r = write_pages(n, ks, n->pages.n, &cur);
    free(ks);
    if (r) return r;
    if (cur != n->size && ftruncate(n->fd, n->size) < 0) return -errno;
    if (opt.backing_sync && (datasync ? fdatasync(n->fd) : fsync(n->fd)) < 0) return -errno;
    pm_drop_from(&n->pages, 0);
    n->backing_size = n->valid_end = n->size;
    return 0;
}

/* ---------------------------------------------------------------- the torn write-back at a power off */

static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int draw(uint64_t ino, uint64_t idx) {
    uint64_t h = mix64(mix64(mix64(opt.crash_seed) ^ ino) ^ idx);
    return (double)(h >> 11) * (1.0 / 9007199254740992.0) < opt.crash_writeback;
}

/* Writes a random subset of the node's dirty pages (and maybe its size) to the backing file. */
static void node_torn_writeback(struct node *n, size_t *written, size_t *total) {
    *total += n->pages.n;
    if (n->size != n->backing_size || n->valid_end != n->backing_size) {
        if (draw(n->ino, UINT64_MAX)) {
            if (n->valid_end < n->backing_size && ftruncate(n->fd, n->valid_end) < 0) return;
            if (ftruncate(n->fd, n->size) < 0) return;
        }
    }
    uint64_t *ks = pm_sorted_keys(&n->pages);
    if (!ks) return;
    for (size_t i = 0; i < n->pages.n; i++) {
        if (!draw(n->ino, ks[i])) continue;
        off_t end = 0;
        if (write_pages(n, ks + i, 1, &end) == 0) (*written)++;
    }
    free(ks);
}

/* ---------------------------------------------------------------- paths */

static const char *rel(const char *path) {
    while (*path == '/') path++;
    return *path ? path : ".";
}

static int is_stats(const char *path) {
    return path && strcmp(rel(path), STATS_FILE) == 0;
}

/* The daemon's own names: BACKING/.lazyfs (journal, trash) and the virtual /.lazyfs-stats. */
static int hidden(const char *path) {
    if (!path) return 0;
    const char *r = rel(path);
    size_t l = strlen(STATE_DIR);
    return (strncmp(r, STATE_DIR, l) == 0 && (r[l] == '\0' || r[l] == '/')) || is_stats(path);
}

/* The inode number of the directory that holds path. */
static int parent_ino(const char *path, uint64_t *ino) {
    char buf[PATH_MAX];
    const char *r = rel(path);
    const char *slash = strrchr(r, '/');
    struct stat st;
    int rc;
    if (!slash) {
        rc = fstat(g.rootfd, &st);
    } else {
        size_t l = slash - r;
        if (l >= sizeof buf) return -ENAMETOOLONG;
        memcpy(buf, r, l);
        buf[l] = '\0';
        rc = fstatat(g.rootfd, buf, &st, AT_SYMLINK_NOFOLLOW);
    }
    if (rc < 0) return -errno;
    *ino = st.st_ino;
    return 0;
}

/* ---------------------------------------------------------------- the namespace journal */

enum { J_CREATE = 1, J_UNLINK, J_RENAME, J_EXCHANGE };

struct jent {
    uint64_t seq;
    int type;
    char kind;   /* 'd' a directory, 'f' anything else */
    char kind2;  /* of the replaced target of a rename */
    uint64_t ino, ino2;
    uint64_t d1, d2; /* the directories touched (d2 == 0: none) */
    int s1, s2;      /* fsynced since */
    char *p1, *p2;   /* relative to the backing directory */
    char *trash;     /* name in the trash: the unlinked object, or the target a rename replaced */
    struct jent *prev, *next;
};

static struct jent *jhead, *jtail;
static size_t jcount;

static void jfree(struct jent *e) {
    free(e->p1);
    free(e->p2);
    free(e->trash);
    free(e);
}

static void jremove(struct jent *e) {
    if (e->prev) e->prev->next = e->next; else jhead = e->next;
    if (e->next) e->next->prev = e->prev; else jtail = e->prev;
    jcount--;
}

static void jappend_mem(struct jent *e) {
    e->prev = jtail;
    e->next = NULL;
    if (jtail) jtail->next = e; else jhead = e;
    jtail = e;
    jcount++;
}

static void put_escaped(FILE *f, const char *s) {
    if (!s || !*s) {
        fputc('-', f);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '%' || (p == (const unsigned char *)s && *p == '-')) {
            fprintf(f, "%%%02x", *p);
        } else {
            fputc(*p, f);
        }
    }
}

static char *unescape(const char *s) {
    if (strcmp(s, "-") == 0) return NULL;
    char *out = malloc(strlen(s) + 1), *o = out;
    if (!out) return NULL;
    while (*s) {
        unsigned v;
        if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1) {
            *o++ = (char)v;
            s += 3;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

static void jwrite(const char *line, size_t len) {
    while (len > 0) {
        ssize_t w = write(g.journalfd, line, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            logmsg("cannot write the journal: %s", strerror(errno));
            return;
        }
        line += w;
        len -= w;
    }
}

static void jpersist(const struct jent *e) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return;
    fprintf(f, "E %" PRIu64 " %d %c %c %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " ", e->seq, e->type,
            e->kind, e->kind2 ? e->kind2 : '-', e->ino, e->ino2, e->d1, e->d2);
    put_escaped(f, e->p1);
    fputc(' ', f);
    put_escaped(f, e->p2);
    fputc(' ', f);
    put_escaped(f, e->trash);
    fputc('\n', f);
    fclose(f);
    jwrite(buf, len);
    free(buf);
}

static struct jent *jnew(int type, char kind, const char *p1, const char *p2, uint64_t d1, uint64_t d2) {
    struct jent *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->seq = ++g.seq;
    e->type = type;
    e->kind = kind;
    e->p1 = p1 ? strdup(p1) : NULL;
    e->p2 = p2 ? strdup(p2) : NULL;
    e->d1 = d1;
    e->d2 = d2 == d1 ? 0 : d2;
    e->s2 = e->d2 == 0;
    return e;
}

static void jlog(struct jent *e) { /* glock held */
    jappend_mem(e);
    jpersist(e);
}

static void trash_name(char *buf, size_t len, uint64_t seq) {
    snprintf(buf, len, "%" PRIu64, seq);
}

static void mark_dir_gone(uint64_t dir_ino);

/* Deletes what an entry holds in the trash: it is gone for good. */
static void trash_delete(const char *name, char kind, uint64_t ino) {
    if (!name) return;
    if (unlinkat(g.trashfd, name, kind == 'd' ? AT_REMOVEDIR : 0) < 0 && errno != ENOENT) {
        logmsg("cannot delete %s from the trash: %s", name, strerror(errno));
    }
    if (kind == 'd') {
        mark_dir_gone(ino);
    } else {
        struct node *n = node_find(g.rootdev, (ino_t)ino);
        if (n) node_maybe_free(n);
    }
}

/* The entry is durable: drop it (and what it kept in the trash). glock held. */
static void jcommit(struct jent *e) {
    jremove(e);
    char line[64];
    int l = snprintf(line, sizeof line, "C %" PRIu64 "\n", e->seq);
    jwrite(line, l);
    if (e->type == J_UNLINK) trash_delete(e->trash, e->kind, e->ino);
    if (e->type == J_RENAME) trash_delete(e->trash, e->kind2, e->ino2);
    jfree(e);
    if (jcount == 0 && ftruncate(g.journalfd, 0) < 0) logmsg("cannot truncate the journal: %s", strerror(errno));
}

/* The directory dir_ino was fsynced: entries whose every directory now is, are durable. */
static void jdir_synced(uint64_t dir_ino) {
    struct jent *e = jhead;
    while (e) {
        struct jent *next = e->next;
        if (e->d1 == dir_ino) e->s1 = 1;
        if (e->d2 == dir_ino) e->s2 = 1;
        if (e->s1 && e->s2) jcommit(e);
        e = next;
    }
}

/* A directory was removed for good: what it held is gone durably too. */
static void mark_dir_gone(uint64_t dir_ino) {
    jdir_synced(dir_ino);
}

/* rm -rf of name under dirfd. */
static void remove_tree(int dirfd, const char *name) {
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return;
    if (S_ISDIR(st.st_mode)) {
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            DIR *d = fdopendir(fd);
            if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) remove_tree(fd, de->d_name);
                }
                closedir(d);
            } else {
                close(fd);
            }
        }
        unlinkat(dirfd, name, AT_REMOVEDIR);
    } else {
        unlinkat(dirfd, name, 0);
    }
}

static int ino_at(int dirfd, const char *path, uint64_t *ino) {
    struct stat st;
    if (!path || fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0) return 0;
    *ino = st.st_ino;
    return 1;
}

static int exists_at(int dirfd, const char *path) {
    struct stat st;
    return path && fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Undoes one entry; a step whose preconditions no longer hold (a later change was made durable) is skipped. */
static int jundo(const struct jent *e) {
    uint64_t ino;
    switch (e->type) {
    case J_CREATE:
        if (ino_at(g.rootfd, e->p1, &ino) && ino == e->ino) {
            remove_tree(g.rootfd, e->p1);
            return 1;
        }
        return 0;
    case J_UNLINK:
        if (e->trash && exists_at(g.trashfd, e->trash) && !exists_at(g.rootfd, e->p1)) {
            return renameat(g.trashfd, e->trash, g.rootfd, e->p1) == 0;
        }
        return 0;
    case J_RENAME: {
        int done = 0;
        if (ino_at(g.rootfd, e->p2, &ino) && ino == e->ino && !exists_at(g.rootfd, e->p1)) {
            done = renameat(g.rootfd, e->p2, g.rootfd, e->p1) == 0;
        }
        if (e->trash && exists_at(g.trashfd, e->trash) && !exists_at(g.rootfd, e->p2)) {
            done |= renameat(g.trashfd, e->trash, g.rootfd, e->p2) == 0;
        }
        return done;
    }
    case J_EXCHANGE: {
        uint64_t a, b;
        if (ino_at(g.rootfd, e->p1, &a) && ino_at(g.rootfd, e->p2, &b) && a == e->ino2 && b == e->ino) {
            return renameat2(g.rootfd, e->p1, g.rootfd, e->p2, RENAME_EXCHANGE) == 0;
        }
        return 0;
    }
    }
    return 0;
}

static void empty_trash(void) {
    DIR *d = fdopendir(dup(g.trashfd));
    if (!d) return;
    struct dirent *de;
    rewinddir(d);
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) remove_tree(g.trashfd, de->d_name);
    }
    closedir(d);
}

/* Undoes every pending entry, newest first; empties the trash and the journal. glock held. */
static size_t jundo_all(size_t *undone) {
    size_t n = 0;
    *undone = 0;
    for (struct jent *e = jtail; e; e = e->prev) {
        n++;
        *undone += jundo(e);
    }
    while (jhead) {
        struct jent *e = jhead;
        jremove(e);
        jfree(e);
    }
    empty_trash();
    if (ftruncate(g.journalfd, 0) < 0) logmsg("cannot truncate the journal: %s", strerror(errno));
    return n;
}

/* At start-up: a journal left by a daemon that died (kill -9) is undone now. */
static void recover(void) {
    int fd = openat(g.statefd, "journal", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        if (line[0] == 'E') {
            struct jent *e = calloc(1, sizeof *e);
            char kind, kind2, p1[PATH_MAX * 3 + 1], p2[PATH_MAX * 3 + 1], tr[64];
            if (!e) break;
            if (sscanf(line, "E %" SCNu64 " %d %c %c %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %12287s %12287s %63s",
                       &e->seq, &e->type, &kind, &kind2, &e->ino, &e->ino2, &e->d1, &e->d2, p1, p2, tr) != 11) {
                free(e);
                continue;
            }
            e->kind = kind;
            e->kind2 = kind2 == '-' ? 0 : kind2;
            e->p1 = unescape(p1);
            e->p2 = unescape(p2);
            e->trash = unescape(tr);
            jappend_mem(e);
        } else if (line[0] == 'C') {
            uint64_t seq;
            if (sscanf(line, "C %" SCNu64, &seq) == 1) {
                for (struct jent *e = jhead; e; e = e->next) {
                    if (e->seq == seq) {
                        jremove(e);
                        jfree(e);
                        break;
                    }
                }
            }
        }
    }
    free(line);
    fclose(f);
    size_t undone, n = jundo_all(&undone);
    if (n) logmsg("recovery: undid %zu of %zu namespace changes a dead daemon had not synced", undone, n);
}

/* ---------------------------------------------------------------- power off */

static void power_off(const char *why) {
    pthread_mutex_lock(&g.glock); /* and never let go: every later operation waits for the end */
    size_t written = 0, total = 0, files = 0;
    for (size_t b = 0; b < NBUCKETS; b++) {
        for (struct node *n = nodes[b]; n; n = n->next) {
            pthread_mutex_lock(&n->lock); /* an fsync in flight finishes first */
            if (!node_clean(n)) files++;
            if (opt.crash_writeback > 0) node_torn_writeback(n, &written, &total);
            else total += n->pages.n;
        }
    }
    size_t undone, pending = jundo_all(&undone);
    logmsg("power off (%s): %zu dirty pages in %zu files, %zu written back (crash_writeback=%g, seed=%lu); "
           "%zu unsynced namespace changes undone (%zu applied)",
           why, total, files, written, opt.crash_writeback, opt.crash_seed, pending, undone);
    _exit(0);
}

static void *signal_thread(void *arg) {
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    for (;;) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGUSR1) power_off("SIGUSR1");
        if (opt.die_with_parent && getppid() != g.parent) {
            umount2(g.mountpoint, MNT_DETACH);
            power_off("parent died");
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- FUSE operations */

static int stats_text(char *buf, size_t size);

struct dirh {
    DIR *dir;
    uint64_t ino;
    int root;
};

static void *lz_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
    cfg->use_ino = 1;
    cfg->readdir_ino = 1;
    cfg->nullpath_ok = 1;
    cfg->hard_remove = 1;    /* unlink while open really unlinks: no .fuse_hidden files */
    cfg->kernel_cache = 1;   /* every change goes through the kernel: its cache is always right */
    cfg->auto_cache = 0;
    cfg->direct_io = 0;      /* shared writable mmap needs the page cache */
    cfg->entry_timeout = 1.0;
    cfg->attr_timeout = 1.0;
    cfg->negative_timeout = 0;
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE; /* writes reach the daemon at once */
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    pthread_t t;
    if (pthread_create(&t, NULL, signal_thread, NULL) == 0) pthread_detach(t);
    logmsg("mounted %s on %s (crash_writeback=%g, crash_seed=%lu, backing_sync=%d, max_write=%u)", g.backing,
           g.mountpoint, opt.crash_writeback, opt.crash_seed, opt.backing_sync, conn->max_write);
    return NULL;
}

/* Clean shutdown (a normal unmount): everything is synced, every namespace change kept. */
static void lz_destroy(void *data) {
    (void)data;
    pthread_mutex_lock(&g.glock);
    size_t files = 0;
    for (size_t b = 0; b < NBUCKETS; b++) {
        for (struct node *n = nodes[b]; n; n = n->next) {
            pthread_mutex_lock(&n->lock);
            if (!node_clean(n)) {
                files++;
                int r = node_sync(n, 0);
                if (r) logmsg("clean unmount: cannot sync inode %lu: %s", (unsigned long)n->ino, strerror(-r));
            }
            pthread_mutex_unlock(&n->lock);
        }
    }
    size_t ops = jcount;
    while (jhead) jcommit(jhead);
    empty_trash();
    logmsg("clean unmount: synced %zu files, kept %zu namespace changes", files, ops);
    pthread_mutex_unlock(&g.glock);
}

static void patch_stat(struct node *n, struct stat *st) { /* n->lock held */
    st->st_size = n->size;
    blkcnt_t min_blocks = (blkcnt_t)n->pages.n * (PAGE / 512);
    if (st->st_blocks < min_blocks) st->st_blocks = min_blocks;
    if (n->has_mtime) {
        st->st_mtim = n->mtime;
        st->st_ctim = n->mtime;
    }
}

static int lz_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
    if ((fi && fi->fh == STATS_FH) || (!(fi && fi->fh) && is_stats(path))) {
        memset(st, 0, sizeof *st);
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_ino = 1; /* the backing root's inode is never 1 */
        return 0;
    }
    if (fi && fi->fh) {
        struct node *n = (struct node *)(uintptr_t)fi->fh;
        if (fstat(n->fd, st) < 0) return -errno;
        pthread_mutex_lock(&n->lock);
        patch_stat(n, st);
        pthread_mutex_unlock(&n->lock);
        return 0;
    }
    if (!path) return -ENOENT;
    if (hidden(path)) return -ENOENT;
    if (fstatat(g.rootfd, rel(path), st, AT_SYMLINK_NOFOLLOW) < 0) return -errno;
    if (S_ISREG(st->st_mode)) {
        pthread_mutex_lock(&g.glock);
        struct node *n = node_find(st->st_dev, st->st_ino);
        if (n) n->refs++;
        pthread_mutex_unlock(&g.glock);
        if (n) {
            pthread_mutex_lock(&n->lock);
            patch_stat(n, st);
            pthread_mutex_unlock(&n->lock);
            node_put(n);
        }
    }
    return 0;
}

/* A reference to the node of path (a regular file), opening the backing file if needed. glock held. */
static struct node *node_of_path(const char *path, int *err) {
    struct stat st;
    if (fstatat(g.rootfd, rel(path), &st, 0) < 0) {
        *err = -errno;
        return NULL;
    }
    struct node *n = node_find(st.st_dev, st.st_ino);
    if (n) {
        n->refs++;
        return n;
    }
    int fd = openat(g.rootfd, rel(path), O_RDWR | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) fd = openat(g.rootfd, rel(path), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = -errno;
        return NULL;
    }
    return node_adopt(fd, err);
}

static int lz_open(const char *path, struct fuse_file_info *fi) {
    if (is_stats(path)) {
        if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EACCES;
        fi->fh = STATS_FH;
        fi->direct_io = 1; /* read afresh each time, whatever size the kernel thinks it has */
        return 0;
    }
    if (hidden(path)) return -ENOENT;
    int err = 0;
    pthread_mutex_lock(&g.glock);
    struct node *n = node_of_path(path, &err);
    pthread_mutex_unlock(&g.glock);
    if (!n) return err;
    if (fi->flags & O_TRUNC) {
        pthread_mutex_lock(&n->lock);
        node_truncate(n, 0);
        pthread_mutex_unlock(&n->lock);
    }
    fi->fh = (uintptr_t)n;
    fi->keep_cache = 1;
    fi->noflush = 1;
    return 0;
}

static void chown_to_caller(int dirfd, const char *name, int fd) {
    if (geteuid() != 0) return;
    struct fuse_context *c = fuse_get_context();
    if (!c || (c->uid == 0 && c->gid == 0)) return;
    int r = fd >= 0 ? fchown(fd, c->uid, c->gid) : fchownat(dirfd, name, c->uid, c->gid, AT_SYMLINK_NOFOLLOW);
    (void)r;
}

static int lz_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
    if (hidden(path)) return -EPERM;
    int err = 0;
    uint64_t dir;
    pthread_mutex_lock(&g.glock);
    int r = parent_ino(path, &dir);
    if (r) {
        pthread_mutex_unlock(&g.glock);
        return r;
    }
    int fd = openat(g.rootfd, rel(path), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, mode);
    int created = fd >= 0;
    if (fd < 0 && errno == EEXIST && !(fi->flags & O_EXCL)) fd = openat(g.rootfd, rel(path), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        err = -errno;
        pthread_mutex_unlock(&g.glock);
        return err;
    }
    struct stat st;
    if (created && fstat(fd, &st) == 0) {
        chown_to_caller(g.rootfd, NULL, fd);
        struct jent *e = jnew(J_CREATE, 'f', rel(path), NULL, dir, 0);
        if (e) {
            e->ino = st.st_ino;
            jlog(e);
        }
    }
    struct node *n = node_adopt(fd, &err);
    pthread_mutex_unlock(&g.glock);
    if (!n) return err;
    if (!created && (fi->flags & O_TRUNC)) {
        pthread_mutex_lock(&n->lock);
        node_truncate(n, 0);
        pthread_mutex_unlock(&n->lock);
    }
    fi->fh = (uintptr_t)n;
    fi->keep_cache = 1;
    fi->noflush = 1;
    return 0;
}

static int lz_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
    (void)path;
    if (fi->fh == STATS_FH) {
        char text[256];
        int l = stats_text(text, sizeof text);
        if (off >= l) return 0;
        if ((off_t)size > l - off) size = l - off;
        memcpy(buf, text + off, size);
        return (int)size;
    }
    struct node *n = (struct node *)(uintptr_t)fi->fh;
    pthread_mutex_lock(&n->lock);
    int r = node_read(n, buf, size, off);
    pthread_mutex_unlock(&n->lock);
    return r;
}

static int lz_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
    (void)path;
    struct node *n = (struct node *)(uintptr_t)fi->fh;
    pthread_mutex_lock(&n->lock);
    int r = node_write(n, buf, size, off);
    pthread_mutex_unlock(&n->lock);
    return r;
}

static int lz_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
    (void)path;
    struct node *n = (struct node *)(uintptr_t)fi->fh;
    pthread_mutex_lock(&n->lock);
    int r = node_sync(n, datasync);
    pthread_mutex_unlock(&n->lock);
    return r;
}

static int lz_flush(const char *path, struct fuse_file_info *fi) {
    (void)path;
    (void)fi;
    return 0; /* close(2) persists nothing */
}

static int lz_release(const char *path, struct fuse_file_info *fi) {
    (void)path;
    if (fi->fh != STATS_FH) node_put((struct node *)(uintptr_t)fi->fh);
    return 0;
}

static int lz_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
    struct node *n;
    int err = 0, temp = 0;
    if (fi && fi->fh) {
        n = (struct node *)(uintptr_t)fi->fh;
    } else {
        if (!path || hidden(path)) return -ENOENT;
        pthread_mutex_lock(&g.glock);
        n = node_of_path(path, &err);
        pthread_mutex_unlock(&g.glock);
        if (!n) return err;
        temp = 1;
    }
    pthread_mutex_lock(&n->lock);
    int r = node_truncate(n, size);
    pthread_mutex_unlock(&n->lock);
    if (temp) node_put(n);
    return r;
}

static int lz_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
    (void)path;
    if (!fi || !fi->fh) return -EOPNOTSUPP;
    if (off < 0 || len <= 0) return -EINVAL;
    struct node *n = (struct node *)(uintptr_t)fi->fh;
    int r = 0;
    pthread_mutex_lock(&n->lock);
    off_t end = off + len;
    if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
        if (mode == 0 && end > n->size) r = node_truncate(n, end);
    } else if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
        r = node_zero(n, off, end < n->size ? end : n->size);
    } else if (mode == FALLOC_FL_ZERO_RANGE || mode == (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)) {
        r = node_zero(n, off, end < n->size ? end : n->size);
        if (r == 0 && !(mode & FALLOC_FL_KEEP_SIZE) && end > n->size) r = node_truncate(n, end);
    } else {
        r = -EOPNOTSUPP;
    }
    pthread_mutex_unlock(&n->lock);
    return r;
}

static int lz_mknod(const char *path, mode_t mode, dev_t rdev) {
    if (hidden(path)) return -EPERM;
    uint64_t dir;
    pthread_mutex_lock(&g.glock);
    int r = parent_ino(path, &dir);
    if (r == 0 && mknodat(g.rootfd, rel(path), mode, rdev) < 0) r = -errno;
    uint64_t ino;
    if (r == 0 && ino_at(g.rootfd, rel(path), &ino)) {
        chown_to_caller(g.rootfd, rel(path), -1);
        struct jent *e = jnew(J_CREATE, 'f', rel(path), NULL, dir, 0);
        if (e) {
            e->ino = ino;
            jlog(e);
        }
    }
    pthread_mutex_unlock(&g.glock);
    return r;
}

static int lz_mkdir(const char *path, mode_t mode) {
    if (hidden(path)) return -EPERM;
    uint64_t dir;
    pthread_mutex_lock(&g.glock);
    int r = parent_ino(path, &dir);
    if (r == 0 && mkdirat(g.rootfd, rel(path), mode) < 0) r = -errno;
    uint64_t ino;
    if (r == 0 && ino_at(g.rootfd, rel(path), &ino)) {
        chown_to_caller(g.rootfd, rel(path), -1);
        struct jent *e = jnew(J_CREATE, 'd', rel(path), NULL, dir, 0);
        if (e) {
            e->ino = ino;
            jlog(e);
        }
    }
    pthread_mutex_unlock(&g.glock);
    return r;
}

static int lz_symlink(const char *target, const char *path) {
    if (hidden(path)) return -EPERM;
    uint64_t dir;
    pthread_mutex_lock(&g.glock);
    int r = parent_ino(path, &dir);
    if (r == 0 && symlinkat(target, g.rootfd, rel(path)) < 0) r = -errno;
    uint64_t ino;
    if (r == 0 && ino_at(g.rootfd, rel(path), &ino)) {
        chown_to_caller(g.rootfd, rel(path), -1);
        struct jent *e = jnew(J_CREATE, 'f', rel(path), NULL, dir, 0);
        if (e) {
            e->ino = ino;
            jlog(e);
        }
    }
    pthread_mutex_unlock(&g.glock);
    return r;
}

static int lz_link(const char *from, const char *to) {
    if (hidden(from) || hidden(to)) return -EPERM;
    uint64_t dir;
    pthread_mutex_lock(&g.glock);
    int r = parent_ino(to, &dir);
    if (r == 0 && linkat(g.rootfd, rel(from), g.rootfd, rel(to), 0) < 0) r = -errno;
    uint64_t ino;
    if (r == 0 && ino_at(g.rootfd, rel(to), &ino)) {
        struct jent *e = jnew(J_CREATE, 'f', rel(to), NULL, dir, 0);
        if (e) {
            e->ino = ino;
            jlog(e);
        }
    }
    pthread_mutex_unlock(&g.glock);
    return r;
}

static int dir_is_empty(const char *relpath) {
    int fd = openat(g.rootfd, relpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    int empty = 1;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

/* unlink and rmdir: into the trash, until the directory is synced. glock held. */
static int remove_to_trash(const char *path, int want_dir) {
    uint64_t dir;
    struct stat st;
    int r = parent_ino(path, &dir);
    if (r) return r;
    if (fstatat(g.rootfd, rel(path), &st, AT_SYMLINK_NOFOLLOW) < 0) return -errno;
    if (want_dir) {
        if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
        if (strcmp(rel(path), ".") == 0) return -EBUSY;
        int e = dir_is_empty(rel(path));
        if (e < 0) return e;
        if (!e) return -ENOTEMPTY;
    } else if (S_ISDIR(st.st_mode)) {
        return -EISDIR;
    }
    char name[32];
    struct jent *e = jnew(J_UNLINK, want_dir ? 'd' : 'f', rel(path), NULL, dir, 0);
    if (!e) return -ENOMEM;
    trash_name(name, sizeof name, e->seq);
    if (renameat(g.rootfd, rel(path), g.trashfd, name) < 0) {
        r = -errno;
        jfree(e);
        return r;
    }
    e->ino = st.st_ino;
    e->trash = strdup(name);
    jlog(e);
    return 0;
}

static int lz_unlink(const char *path) {
    if (hidden(path)) return -ENOENT;
    pthread_mutex_lock(&g.glock);
    int r = remove_to_trash(path, 0);
    pthread_mutex_unlock(&g.glock);
    return r;
}

static int lz_rmdir(const char *path) {
    if (hidden(path)) return -ENOENT;
    pthread_mutex_lock(&g.glock);
    int r = remove_to_trash(path, 1);
    pthread_mutex_unlock(&g.glock);
    return r;
}

static int lz_rename(const char *from, const char *to, unsigned int flags) {
    if (hidden(from) || hidden(to)) return -EPERM;
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return -EINVAL;
    uint64_t d1, d2;
    struct stat sf, st;
    int r;
    pthread_mutex_lock(&g.glock);
    if ((r = parent_ino(from, &d1)) || (r = parent_ino(to, &d2))) goto out;
    if (fstatat(g.rootfd, rel(from), &sf, AT_SYMLINK_NOFOLLOW) < 0) {
        r = -errno;
        goto out;
    }
    int target = fstatat(g.rootfd, rel(to), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (flags & RENAME_EXCHANGE) {
        if (!target) {
            r = -ENOENT;
            goto out;
        }
        if (renameat2(g.rootfd, rel(from), g.rootfd, rel(to), RENAME_EXCHANGE) < 0) {
            r = -errno;
            goto out;
        }
        struct jent *e = jnew(J_EXCHANGE, S_ISDIR(sf.st_mode) ? 'd' : 'f', rel(from), rel(to), d1, d2);
        if (e) {
            e->ino = sf.st_ino;
            e->ino2 = st.st_ino;
            e->kind2 = S_ISDIR(st.st_mode) ? 'd' : 'f';
            jlog(e);
        }
        goto out;
    }
    if (target && (flags & RENAME_NOREPLACE)) {
        r = -EEXIST;
        goto out;
    }
    if (target && st.st_ino == sf.st_ino && st.st_dev == sf.st_dev) goto out; /* the same file: nothing */
    struct jent *e = jnew(J_RENAME, S_ISDIR(sf.st_mode) ? 'd' : 'f', rel(from), rel(to), d1, d2);
    if (!e) {
        r = -ENOMEM;
        goto out;
    }
    e->ino = sf.st_ino;
    char name[32] = "";
    if (target) {
        if (S_ISDIR(sf.st_mode) && !S_ISDIR(st.st_mode)) r = -ENOTDIR;
        else if (!S_ISDIR(sf.st_mode) && S_ISDIR(st.st_mode)) r = -EISDIR;
        else if (S_ISDIR(st.st_mode)) {
            int empty = dir_is_empty(rel(to));
            r = empty < 0 ? empty : empty ? 0 : -ENOTEMPTY;
        }
        if (r) {
            jfree(e);
            goto out;
        }
        trash_name(name, sizeof name, e->seq);
        if (renameat(g.rootfd, rel(to), g.trashfd, name) < 0) {
            r = -errno;
            jfree(e);
            goto out;
        }
    }
    if (renameat(g.rootfd, rel(from), g.rootfd, rel(to)) < 0) {
        r = -errno;
        if (target && renameat(g.trashfd, name, g.rootfd, rel(to)) < 0) {
            logmsg("cannot put %s back from the trash: %s", rel(to), strerror(errno));
        }
        jfree(e);
        goto out;
    }
    if (target) {
        e->trash = strdup(name);
        e->ino2 = st.st_ino;
        e->kind2 = S_ISDIR(st.st_mode) ? 'd' : 'f';
    }
    jlog(e);
out:
    pthread_mutex_unlock(&g.glock);
    return r;
}

static int lz_readlink(const char *path, char *buf, size_t size) {
    if (hidden(path)) return -ENOENT;
    ssize_t l = readlinkat(g.rootfd, rel(path), buf, size - 1);
    if (l < 0) return -errno;
    buf[l] = '\0';
    return 0;
}

static int lz_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
    if (fi && fi->fh) return fchmod(((struct node *)(uintptr_t)fi->fh)->fd, mode) < 0 ? -errno : 0;
    if (!path || hidden(path)) return -ENOENT;
    return fchmodat(g.rootfd, rel(path), mode, 0) < 0 ? -errno : 0;
}

static int lz_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
    if (fi && fi->fh) return fchown(((struct node *)(uintptr_t)fi->fh)->fd, uid, gid) < 0 ? -errno : 0;
    if (!path || hidden(path)) return -ENOENT;
    return fchownat(g.rootfd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int lz_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
    struct node *n = NULL;
    int r;
    if (fi && fi->fh) {
        n = (struct node *)(uintptr_t)fi->fh;
        r = futimens(n->fd, tv) < 0 ? -errno : 0;
    } else {
        if (!path || hidden(path)) return -ENOENT;
        r = utimensat(g.rootfd, rel(path), tv, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
    }
    if (n && r == 0) {
        pthread_mutex_lock(&n->lock);
        n->has_mtime = 0;
        pthread_mutex_unlock(&n->lock);
    }
    return r;
}

static int lz_statfs(const char *path, struct statvfs *st) {
    (void)path;
    return fstatvfs(g.rootfd, st) < 0 ? -errno : 0;
}

static int lz_access(const char *path, int mask) {
    if (hidden(path)) return -ENOENT;
    return faccessat(g.rootfd, rel(path), mask, 0) < 0 ? -errno : 0;
}

static int lz_opendir(const char *path, struct fuse_file_info *fi) {
    if (hidden(path)) return -ENOENT;
    int fd = openat(g.rootfd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    struct dirh *h = calloc(1, sizeof *h);
    if (!h) {
        close(fd);
        return -ENOMEM;
    }
    h->dir = fdopendir(fd);
    if (!h->dir) {
        int r = -errno;
        close(fd);
        free(h);
        return r;
    }
    h->ino = st.st_ino;
    h->root = st.st_ino == g.rootino && st.st_dev == g.rootdev;
    fi->fh = (uintptr_t)h;
    return 0;
}

static int lz_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
    (void)path;
    (void)off;
    (void)flags;
    struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
    rewinddir(h->dir);
    struct dirent *de;
    while ((de = readdir(h->dir))) {
        if (h->root && strcmp(de->d_name, STATE_DIR) == 0) continue;
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_ino = de->d_ino;
        st.st_mode = DTTOIF(de->d_type);
        if (fill(buf, de->d_name, &st, 0, 0)) break;
    }
    return 0;
}

static int lz_releasedir(const char *path, struct fuse_file_info *fi) {
    (void)path;
    struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
    closedir(h->dir);
    free(h);
    return 0;
}

static int lz_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
    (void)path;
    struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
    pthread_mutex_lock(&g.glock);
    jdir_synced(h->ino);
    pthread_mutex_unlock(&g.glock);
    if (opt.backing_sync && (datasync ? fdatasync(dirfd(h->dir)) : fsync(dirfd(h->dir))) < 0) return -errno;
    return 0;
}

static int stats_text(char *buf, size_t size) {
    size_t pages = 0, files = 0;
    pthread_mutex_lock(&g.glock);
    for (size_t b = 0; b < NBUCKETS; b++) {
        for (struct node *n = nodes[b]; n; n = n->next) {
            pthread_mutex_lock(&n->lock);
            pages += n->pages.n;
            if (!node_clean(n)) files++;
            pthread_mutex_unlock(&n->lock);
        }
    }
    size_t ops = jcount;
    pthread_mutex_unlock(&g.glock);
    return snprintf(buf, size, "dirty_pages=%zu dirty_files=%zu pending_namespace_ops=%zu\n", pages, files, ops);
}

static const struct fuse_operations ops = {
    .init = lz_init,
    .destroy = lz_destroy,
    .getattr = lz_getattr,
    .readlink = lz_readlink,
    .mknod = lz_mknod,
    .mkdir = lz_mkdir,
    .unlink = lz_unlink,
    .rmdir = lz_rmdir,
    .symlink = lz_symlink,
    .rename = lz_rename,
    .link = lz_link,
    .chmod = lz_chmod,
    .chown = lz_chown,
    .truncate = lz_truncate,
    .open = lz_open,
    .read = lz_read,
    .write = lz_write,
    .statfs = lz_statfs,
    .flush = lz_flush,
    .release = lz_release,
    .fsync = lz_fsync,
    .opendir = lz_opendir,
    .readdir = lz_readdir,
    .releasedir = lz_releasedir,
    .fsyncdir = lz_fsyncdir,
    .access = lz_access,
    .create = lz_create,
    .utimens = lz_utimens,
    .fallocate = lz_fallocate,
};

/* ---------------------------------------------------------------- main */

#define LZ_OPT(t, p) {t, offsetof(struct options, p), 1}
static const struct fuse_opt lz_opts[] = {
    LZ_OPT("crash_writeback=%lf", crash_writeback),
    LZ_OPT("crash_seed=%lu", crash_seed),
    LZ_OPT("backing_sync=%d", backing_sync),
    LZ_OPT("die_with_parent", die_with_parent),
    FUSE_OPT_END,
};

static int lz_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs) {
    (void)data;
    (void)outargs;
    if (key == FUSE_OPT_KEY_NONOPT) {
        if (!g.backing) {
            g.backing = realpath(arg, NULL);
            if (!g.backing) {
                fprintf(stderr, "lazyfs: backing directory %s: %s\n", arg, strerror(errno));
                exit(2);
            }
            return 0;
        }
        if (!g.mountpoint) {
            g.mountpoint = realpath(arg, NULL);
            if (!g.mountpoint) g.mountpoint = strdup(arg);
        }
    }
    return 1;
}

static int open_state(void) {
    g.rootfd = open(g.backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g.rootfd < 0) return -errno;
    struct stat st;
    if (fstat(g.rootfd, &st) < 0) return -errno;
    g.rootdev = st.st_dev;
    g.rootino = st.st_ino;
    if (mkdirat(g.rootfd, STATE_DIR, 0700) < 0 && errno != EEXIST) return -errno;
    g.statefd = openat(g.rootfd, STATE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g.statefd < 0) return -errno;
    if (mkdirat(g.statefd, "trash", 0700) < 0 && errno != EEXIST) return -errno;
    g.trashfd = openat(g.statefd, "trash", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g.trashfd < 0) return -errno;
    g.journalfd = openat(g.statefd, "journal", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (g.journalfd < 0) return -errno;
    return 0;
}

int main(int argc, char *argv[]) {
    const char *env;
    if ((env = getenv("LAZYFS_CRASH_WRITEBACK"))) opt.crash_writeback = atof(env);
    if ((env = getenv("LAZYFS_CRASH_SEED"))) opt.crash_seed = strtoul(env, NULL, 0);
    if ((env = getenv("LAZYFS_BACKING_SYNC"))) opt.backing_sync = atoi(env);

    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    if (fuse_opt_parse(&args, &opt, lz_opts, lz_opt_proc) < 0) return 2;
    if (!g.backing || !g.mountpoint) {
        fprintf(stderr, "usage: %s [-f] [-s] [-o crash_writeback=P,crash_seed=N,backing_sync=0|1,die_with_parent] "
                        "BACKING_DIR MOUNT_POINT\n", argv[0]);
        return 2;
    }
    umask(0); /* the modes the kernel passes already had the caller's umask applied */
    int r = open_state();
    if (r) {
        fprintf(stderr, "lazyfs: cannot set up %s/%s: %s\n", g.backing, STATE_DIR, strerror(-r));
        return 1;
    }
    recover();
    g.parent = getppid();

    /* SIGUSR1 is taken by one thread with sigtimedwait: block it in every thread (they inherit the mask). */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    fuse_opt_add_arg(&args, "-osubtype=lazyfs");
    fuse_opt_add_arg(&args, "-ofsname=lazyfs");
    fuse_opt_add_arg(&args, "-odefault_permissions");
    r = fuse_main(args.argc, args.argv, &ops, NULL);
    fuse_opt_free_args(&args);
    return r;
}
