/* SPDX-License-Identifier: MIT */
#include "shm/segment.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/compiler.h"
#include "common/time.h"

#define PAGE 4096u

static void errf(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

int shm_instance_valid(const char *s)
{
	size_t n;

	if (!s || !*s || *s == '.')
		return 0;
	for (n = 0; s[n]; n++) {
		char c = s[n];

		if (n >= SHM_INSTANCE_MAX - 1)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

int shm_path(const char *instance, char *buf, size_t len)
{
	if (!shm_instance_valid(instance))
		return -EINVAL;
	if ((size_t)snprintf(buf, len, "/dev/shm/ferry.%s", instance) >= len)
		return -EINVAL;
	return 0;
}

/* The shm_open(3) name for an instance: the path without /dev/shm. */
static const char *shm_name(const char *path)
{
	return path + sizeof("/dev/shm") - 1;
}

struct geometry {
	uint64_t workers_off;
	uint64_t rings_off;
	uint64_t tenants_off;
	uint64_t sources_off;
	uint64_t inflight_off;
	uint64_t data_off; /* first data area */
	uint64_t size;
};

static int geometry(const struct shm_spec *spec, struct geometry *g, char *err, size_t errlen)
{
	uint64_t off;
	unsigned i;

	if (!spec || !shm_instance_valid(spec->instance)) {
		errf(err, errlen,
		     "invalid instance name (want 1-63 of [A-Za-z0-9_.-], no leading dot)");
		return -EINVAL;
	}
	if (spec->n_workers > SHM_WORKERS_MAX || spec->n_rings > SHM_RINGS_MAX ||
	    (spec->n_workers && !spec->workers) || (spec->n_rings && !spec->rings)) {
		errf(err, errlen, "invalid segment spec (%u workers, %u rings)", spec->n_workers,
		     spec->n_rings);
		return -EINVAL;
	}
	for (i = 0; i < spec->n_workers; i++) {
		const char *n = spec->workers[i].name;

		if (!n || !*n || strlen(n) >= SHM_WORKER_NAME_MAX) {
			errf(err, errlen, "worker %u: name missing or longer than %d", i,
			     SHM_WORKER_NAME_MAX - 1);
			return -EINVAL;
		}
	}
	off = sizeof(struct shm_header);
	g->workers_off = off;
	off += (uint64_t)spec->n_workers * sizeof(struct shm_worker);
	g->rings_off = off;
	off += (uint64_t)spec->n_rings * sizeof(struct ring_shared);
	g->tenants_off = off;
	off += (uint64_t)spec->n_workers * SHM_TENANT_SLOTS * sizeof(struct shm_tenant);
	if (spec->n_sources > SHM_SOURCES_MAX || (spec->n_sources && !spec->source_names) ||
	    (spec->inflight_slots &&
	     (!is_pow2_u64(spec->inflight_slots) || spec->inflight_slots > SHM_INFLIGHT_MAX))) {
		errf(err, errlen, "invalid segment spec (%u sources, %u in-flight slots)",
		     spec->n_sources, spec->inflight_slots);
		return -EINVAL;
	}
	g->sources_off = off;
	off += (uint64_t)spec->n_sources * sizeof(struct shm_source);
	g->inflight_off = off;
	off += (uint64_t)spec->inflight_slots * sizeof(struct shm_inflight);
	off = ALIGN_UP(off, (uint64_t)PAGE);
	g->data_off = off;
	for (i = 0; i < spec->n_rings; i++) {
		const struct shm_ring_spec *rs = &spec->rings[i];
		uint64_t cap = rs->capacity;
		int j;

		if (!rs->name || !*rs->name || strlen(rs->name) >= RING_NAME_MAX) {
			errf(err, errlen, "ring %u: name missing or longer than %d", i,
			     RING_NAME_MAX - 1);
			return -EINVAL;
		}
		if (!is_pow2_u64(cap) || cap < RING_CAPACITY_MIN || cap > RING_CAPACITY_MAX) {
			errf(err, errlen,
			     "ring %s: capacity %llu is not a power of two between %llu and %llu",
			     rs->name, (unsigned long long)cap, RING_CAPACITY_MIN,
			     RING_CAPACITY_MAX);
			return -EINVAL;
		}
		if (rs->writer < -1 || rs->writer >= (int)spec->n_workers || rs->reader < -1 ||
		    rs->reader >= (int)spec->n_workers) {
			errf(err, errlen, "ring %s: writer or reader is not a worker", rs->name);
			return -EINVAL;
		}
		for (j = 0; j < (int)i; j++)
			if (!strcmp(spec->rings[j].name, rs->name)) {
				errf(err, errlen, "ring %s: name used twice", rs->name);
				return -EINVAL;
			}
		off += ALIGN_UP(cap, (uint64_t)PAGE);
	}
	g->size = off;
	return 0;
}

size_t shm_spec_size(const struct shm_spec *spec)
{
	struct geometry g;

	return geometry(spec, &g, NULL, 0) < 0 ? 0 : (size_t)g.size;
}

static void layout(void *base, const struct shm_spec *spec, const struct geometry *g)
{
	struct shm_header *h = base;
	struct shm_worker *w = (struct shm_worker *)((char *)base + g->workers_off);
	struct ring_shared *rs = (struct ring_shared *)((char *)base + g->rings_off);
	uint64_t data = g->data_off;
	unsigned i;

	/* ftruncate gave zeroed memory; fill in what is not zero. */
	h->layout_version = SHM_LAYOUT_VERSION;
	h->header_size = sizeof(*h);
	h->segment_size = g->size;
	h->worker_size = sizeof(struct shm_worker);
	h->ring_size = sizeof(struct ring_shared);
	h->n_workers = spec->n_workers;
	h->n_rings = spec->n_rings;
	h->workers_off = g->workers_off;
	h->rings_off = g->rings_off;
	h->tenants_off = g->tenants_off;
	h->tenant_slots = SHM_TENANT_SLOTS;
	h->tenant_size = sizeof(struct shm_tenant);
	h->sources_off = g->sources_off;
	h->n_sources = spec->n_sources;
	h->source_size = sizeof(struct shm_source);
	h->inflight_off = g->inflight_off;
	h->inflight_slots = spec->inflight_slots;
	h->inflight_size = sizeof(struct shm_inflight);
	h->created_ns = realtime_ns();
	snprintf(h->instance, sizeof(h->instance), "%s", spec->instance);
	h->supervisor_pid = (int32_t)getpid();

	for (i = 0; i < spec->n_workers; i++) {
		snprintf(w[i].name, sizeof(w[i].name), "%s", spec->workers[i].name);
		w[i].kind = spec->workers[i].kind;
		w[i].shard = spec->workers[i].shard;
		w[i].index = i;
	}
	for (i = 0; i < spec->n_sources; i++) {
		struct shm_source *src = (struct shm_source *)((char *)base + g->sources_off) + i;

		snprintf(src->name, sizeof(src->name), "%s",
			 spec->source_names[i] ? spec->source_names[i] : "");
		src->kind = spec->source_kinds ? spec->source_kinds[i] : 0;
	}
	for (i = 0; i < spec->n_rings; i++) {
		const struct shm_ring_spec *s = &spec->rings[i];
		struct shm_wake *dw = s->reader >= 0 ? &w[s->reader].wake : NULL;
		struct shm_wake *sw = s->writer >= 0 ? &w[s->writer].wake : NULL;

		/* Cannot fail: geometry() checked every argument. */
		ring_format(&rs[i], (char *)base + data, s->capacity, s->name, dw, sw);
		rs[i].writer_worker = s->writer;
		rs[i].reader_worker = s->reader;
		data += ALIGN_UP(s->capacity, (uint64_t)PAGE);
	}
	/* Magic last: attachers refuse a half-made segment. */
	__atomic_store_n(&h->magic, SHM_MAGIC, __ATOMIC_RELEASE);
}

static struct shm_segment *segment_new(void *base, size_t size, int fd, int readonly,
				       const char *path)
{
	struct shm_segment *seg = calloc(1, sizeof(*seg));
	struct shm_header *h = base;

	if (!seg)
		return NULL;
	seg->base = base;
	seg->size = size;
	seg->fd = fd;
	seg->readonly = readonly;
	seg->hdr = h;
	seg->workers = (struct shm_worker *)((char *)base + h->workers_off);
	seg->rings = (struct ring_shared *)((char *)base + h->rings_off);
	snprintf(seg->path, sizeof(seg->path), "%s", path);
	return seg;
}

int shm_segment_create(const struct shm_spec *spec, unsigned flags, struct shm_segment **ret,
		       char *err, size_t errlen)
{
	char path[SHM_PATH_MAX];
	struct geometry g;
	struct shm_segment *seg;
	void *base = MAP_FAILED;
	int fd = -1, r;

	if (!ret || (flags & ~SHM_CREATE_REPLACE)) {
		errf(err, errlen, "invalid arguments");
		return -EINVAL;
	}
	r = geometry(spec, &g, err, errlen);
	if (r < 0)
		return r;
	shm_path(spec->instance, path, sizeof(path));
	if (flags & SHM_CREATE_REPLACE)
		shm_unlink(shm_name(path));
	fd = shm_open(shm_name(path), O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		r = -errno;
		errf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
		return r;
	}
	/* Whatever the umask said, nobody but the owner reads the segment. */
	if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)g.size) < 0) {
		r = -errno;
		errf(err, errlen, "%s: cannot size to %llu bytes: %s", path,
		     (unsigned long long)g.size, strerror(errno));
		goto fail;
	}
	base = mmap(NULL, g.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		r = -errno;
		errf(err, errlen, "%s: cannot map: %s", path, strerror(errno));
		goto fail;
	}
	layout(base, spec, &g);
	seg = segment_new(base, g.size, fd, 0, path);
	if (!seg) {
		r = -ENOMEM;
		errf(err, errlen, "out of memory");
		goto fail;
	}
	*ret = seg;
	return 0;
fail:
	if (base != MAP_FAILED)
		munmap(base, g.size);
	close(fd);
	shm_unlink(shm_name(path));
	return r;
}

/* Check everything in a mapped segment before anybody trusts it. */
static int check(const void *base, size_t size, const char *path, char *err, size_t errlen)
{
	const struct shm_header *h = base;
	const struct shm_worker *w;
	const struct ring_shared *rs;
	uint64_t magic;
	unsigned i;

	if (size < sizeof(*h)) {
		errf(err, errlen, "%s: %zu bytes, too small to be a ferry segment", path, size);
		return -EBADMSG;
	}
	magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
	if (magic != SHM_MAGIC) {
		errf(err, errlen,
		     "%s: bad magic 0x%016llx, want 0x%016llx: not a ferry segment, or one still "
		     "being made",
		     path, (unsigned long long)magic, SHM_MAGIC);
		return -EPROTO;
	}
	if (h->layout_version != SHM_LAYOUT_VERSION) {
		errf(err, errlen,
		     "%s: layout version %u, this build speaks %u: use ferryctl from the build "
		     "that runs ferryd (or restart ferryd with this build)",
		     path, h->layout_version, SHM_LAYOUT_VERSION);
		return -EPROTO;
	}
	if (h->header_size != sizeof(*h) || h->worker_size != sizeof(*w) ||
	    h->ring_size != sizeof(*rs)) {
		errf(err, errlen,
		     "%s: structure sizes %u/%u/%u differ from this build's %zu/%zu/%zu", path,
		     h->header_size, h->worker_size, h->ring_size, sizeof(*h), sizeof(*w),
		     sizeof(*rs));
		return -EPROTO;
	}
	if (h->segment_size != size) {
		errf(err, errlen, "%s: header says %llu bytes, file has %zu", path,
		     (unsigned long long)h->segment_size, size);
		return -EBADMSG;
	}
	if (h->n_workers > SHM_WORKERS_MAX || h->n_rings > SHM_RINGS_MAX ||
	    h->workers_off < sizeof(*h) || h->workers_off % FERRY_CACHE_LINE ||
	    h->rings_off % FERRY_CACHE_LINE ||
	    h->workers_off + (uint64_t)h->n_workers * sizeof(*w) > h->rings_off ||
	    h->rings_off + (uint64_t)h->n_rings * sizeof(*rs) > size) {
		errf(err, errlen, "%s: worker or ring table out of bounds", path);
		return -EBADMSG;
	}
	if (h->tenant_slots != SHM_TENANT_SLOTS || h->tenant_size != sizeof(struct shm_tenant) ||
	    h->tenants_off % FERRY_CACHE_LINE || h->tenants_off < h->rings_off ||
	    h->tenants_off + (uint64_t)h->n_workers * SHM_TENANT_SLOTS * sizeof(struct shm_tenant) >
		    size) {
		errf(err, errlen, "%s: tenant tables out of bounds", path);
		return -EBADMSG;
	}
	if (h->source_size != sizeof(struct shm_source) || h->n_sources > SHM_SOURCES_MAX ||
	    h->sources_off % FERRY_CACHE_LINE || h->sources_off < h->tenants_off ||
	    h->sources_off + (uint64_t)h->n_sources * sizeof(struct shm_source) > size ||
	    h->inflight_size != sizeof(struct shm_inflight) ||
	    h->inflight_slots > SHM_INFLIGHT_MAX ||
	    (h->inflight_slots && !is_pow2_u64(h->inflight_slots)) ||
	    h->inflight_off % FERRY_CACHE_LINE || h->inflight_off < h->sources_off ||
	    h->inflight_off + (uint64_t)h->inflight_slots * sizeof(struct shm_inflight) > size) {
		errf(err, errlen, "%s: source or in-flight table out of bounds", path);
		return -EBADMSG;
	}
	if (!memchr(h->instance, 0, sizeof(h->instance))) {
		errf(err, errlen, "%s: instance name not terminated", path);
		return -EBADMSG;
	}
	w = (const struct shm_worker *)((const char *)base + h->workers_off);
	for (i = 0; i < h->n_workers; i++)
		if (!memchr(w[i].name, 0, sizeof(w[i].name))) {
			errf(err, errlen, "%s: worker %u: name not terminated", path, i);
			return -EBADMSG;
		}
	rs = (const struct ring_shared *)((const char *)base + h->rings_off);
	for (i = 0; i < h->n_rings; i++) {
		const char *why = NULL;
		int r = ring_check(&rs[i], base, size, &why);

		if (r < 0) {
			errf(err, errlen, "%s: ring %u: %s", path, i, why);
			return r;
		}
		if (rs[i].writer_worker < -1 || rs[i].writer_worker >= (int32_t)h->n_workers ||
		    rs[i].reader_worker < -1 || rs[i].reader_worker >= (int32_t)h->n_workers) {
			errf(err, errlen, "%s: ring %u: writer or reader is not a worker", path, i);
			return -EBADMSG;
		}
	}
	return 0;
}

int shm_segment_attach(int fd, unsigned flags, struct shm_segment **ret, char *err, size_t errlen)
{
	char path[64];
	struct stat st;
	struct shm_segment *seg;
	void *base;
	int r, prot, myfd;
	size_t size;

	if (!ret || fd < 0 || (flags & ~SHM_RDONLY)) {
		errf(err, errlen, "invalid arguments");
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "segment fd %d", fd);
	if (fstat(fd, &st) < 0) {
		r = -errno;
		errf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	if (st.st_size < (off_t)sizeof(struct shm_header)) {
		errf(err, errlen, "%s: %lld bytes, too small to be a ferry segment", path,
		     (long long)st.st_size);
		return -EBADMSG;
	}
	size = (size_t)st.st_size;
	prot = PROT_READ | ((flags & SHM_RDONLY) ? 0 : PROT_WRITE);
	base = mmap(NULL, size, prot, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		r = -errno;
		errf(err, errlen, "%s: cannot map: %s", path, strerror(errno));
		return r;
	}
	r = check(base, size, path, err, errlen);
	if (r < 0)
		goto fail;
	myfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (myfd < 0) {
		r = -errno;
		errf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	seg = segment_new(base, size, myfd, !!(flags & SHM_RDONLY), path);
	if (!seg) {
		close(myfd);
		r = -ENOMEM;
		errf(err, errlen, "out of memory");
		goto fail;
	}
	*ret = seg;
	return 0;
fail:
	munmap(base, size);
	return r;
}

int shm_segment_open(const char *instance, unsigned flags, struct shm_segment **ret, char *err,
		     size_t errlen)
{
	char path[SHM_PATH_MAX];
	char e[256] = "";
	int fd, r;

	if (shm_path(instance, path, sizeof(path)) < 0) {
		errf(err, errlen, "invalid instance name '%s'", instance ? instance : "");
		return -EINVAL;
	}
	fd = shm_open(shm_name(path), (flags & SHM_RDONLY) ? O_RDONLY : O_RDWR, 0);
	if (fd < 0) {
		r = -errno;
		if (errno == ENOENT)
			errf(err, errlen,
			     "%s: no such segment: is ferryd running as instance '%s'?", path,
			     instance);
		else
			errf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	r = shm_segment_attach(fd, flags, ret, e, sizeof(e));
	close(fd);
	if (r < 0) {
		/* Name the file, not the fd, in what the user reads. */
		const char *rest = strchr(e, ':');

		errf(err, errlen, "%s%s", path, rest ? rest : ": cannot attach");
		return r;
	}
	snprintf((*ret)->path, sizeof((*ret)->path), "%s", path);
	return 0;
}

void shm_segment_close(struct shm_segment *seg)
{
	if (!seg)
		return;
	if (seg->base)
		munmap(seg->base, seg->size);
	if (seg->fd >= 0)
		close(seg->fd);
	free(seg);
}

int shm_segment_unlink(const char *instance)
{
	char path[SHM_PATH_MAX];

	if (shm_path(instance, path, sizeof(path)) < 0)
		return -EINVAL;
	return shm_unlink(shm_name(path)) < 0 ? -errno : 0;
}

struct shm_tenant *shm_worker_tenants(const struct shm_segment *seg, unsigned w)
{
	if (!seg || w >= seg->hdr->n_workers)
		return NULL;
	return (struct shm_tenant *)((char *)seg->base + seg->hdr->tenants_off) +
	       (size_t)w * SHM_TENANT_SLOTS;
}

struct shm_tenant *shm_tenant_slot_n(struct shm_tenant *table, const char *tenant, size_t len)
{
	/* A longer name is counted under its first SHM_TENANT_NAME_MAX - 1 bytes. */
	size_t n = strnlen(tenant, len < SHM_TENANT_NAME_MAX - 1 ? len : SHM_TENANT_NAME_MAX - 1);
	uint32_t h = fnv1a32(tenant, n);
	unsigned i, s;

	/* Open addressing over all but the last slot, which takes the rest. */
	for (i = 0; i < SHM_TENANT_SLOTS - 1; i++) {
		struct shm_tenant *t = &table[(h + i) % (SHM_TENANT_SLOTS - 1)];

		if (!t->name[0]) {
			snprintf(t->name, sizeof(t->name), "%.*s", (int)n, tenant);
			return t;
		}
		if (!strncmp(t->name, tenant, n) && !t->name[n])
			return t;
	}
	s = SHM_TENANT_SLOTS - 1;
	if (!table[s].name[0])
		strcpy(table[s].name, "*");
	return &table[s];
}

struct shm_tenant *shm_tenant_slot(struct shm_tenant *table, const char *tenant)
{
	return shm_tenant_slot_n(table, tenant, SHM_TENANT_NAME_MAX - 1);
}

struct shm_source *shm_sources(const struct shm_segment *seg)
{
	return (struct shm_source *)((char *)seg->base + seg->hdr->sources_off);
}

struct shm_inflight *shm_inflight(const struct shm_segment *seg)
{
	return (struct shm_inflight *)((char *)seg->base + seg->hdr->inflight_off);
}

int shm_segment_ring_find(const struct shm_segment *seg, const char *name)
{
	unsigned i;

	for (i = 0; i < seg->hdr->n_rings; i++)
		if (!strncmp(seg->rings[i].name, name, RING_NAME_MAX))
			return (int)i;
	return -ENOENT;
}

int shm_segment_ring_attach(struct shm_segment *seg, unsigned idx, unsigned role, struct ring *r,
			    const char **why)
{
	if (!seg || idx >= seg->hdr->n_rings) {
		if (why)
			*why = "no such ring";
		return -EINVAL;
	}
	if (seg->readonly && role != RING_INSPECT) {
		if (why)
			*why = "segment attached read-only";
		return -EROFS;
	}
	return ring_attach(r, &seg->rings[idx], seg->base, seg->size, role, why);
}
