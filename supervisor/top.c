/* SPDX-License-Identifier: MIT */
/*
 * ferryctl top: samples the segment every interval and draws one frame of
 * rates computed from two snapshots (supervisor/view.h). Plain ANSI
 * escapes on a terminal, plain frames otherwise; read-only like the rest
 * of ferryctl.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/compiler.h"
#include "common/msg.h"
#include "common/time.h"
#include "supervisor/top.h"
#include "supervisor/view.h"

#define EXIT_USAGE  100
#define EXIT_SYSTEM 111

/* How long the segment may be missing before top says ferryd stopped. */
#define TOP_GONE_GRACE_NS 2000000000ull

/* Signal flags, the only globals. */
static volatile sig_atomic_t top_quit;	  /* SIGINT, SIGTERM, SIGHUP */
static volatile sig_atomic_t top_resized; /* SIGWINCH */

/*
 * CPU of a stage. ferryd samples cpu_ns about once a second, out of step
 * with our interval: a plain delta per interval would flip between 0 and
 * twice the truth. So the rate is taken between the moments we saw the
 * value change, from the second change on (the first one only fixes the
 * moment ferryd sampled).
 */
struct cpu_track {
	int32_t pid;
	uint64_t val; /* cpu_ns last seen */
	uint64_t t;   /* when we saw it change to val; 0: not yet */
	double pct;   /* -1: not known yet */
};

/* No change for this long: the stage is idle (or ferryd stopped sampling it). */
#define TOP_CPU_IDLE_NS 3000000000ull

struct top {
	const char *instance;
	struct shm_segment *seg;
	uint64_t created_ns; /* of the segment we show: another one means ferryd restarted */
	struct view prev, cur;
	int have_prev;
	struct cpu_track *cpu; /* per stage of cur */
	int tty;	       /* stdout is a terminal: escapes, one screen redrawn in place */
	int keys;	       /* stdin is a terminal in non-canonical mode: q quits */
	int alt;	       /* drawn on the alternate screen (not with -n) */
	struct termios saved;
	unsigned cols, rows;
	uint64_t interval_ns;
	char note[160]; /* said in the next frame's header: reattached, waiting */
	/* the frame being built */
	FILE *f;
	unsigned lines;
	unsigned max_lines; /* on a terminal: never scroll */
};

static void on_quit(int sig)
{
	(void)sig;
	top_quit = 1;
}

static void on_winch(int sig)
{
	(void)sig;
	top_resized = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ferryctl [-i INSTANCE] top [-d SECONDS] [-n ITERATIONS]\n"
		   "\n"
		   "  -d, --delay SECONDS      refresh interval (default 1, at least 0.05)\n"
		   "  -n, --iterations N       draw N frames, then exit (default: until q)\n"
		   "  -h, --help               this text\n"
		   "\n"
		   "Rates are per second over the last interval (the first frame has none).\n"
		   "On a terminal: one screen, q or Ctrl-C quits. Otherwise: plain frames\n"
		   "one after another, each ended by an empty line, cut to $LINES (default\n"
		   "24) rows. Follows a new segment (ferryd restarted); exits 111 when there\n"
		   "has been none for 2 seconds (ferryd stopped).\n");
}

/* Terminal size: the tty's, else $COLUMNS/$LINES, else 80x24. */
static void top_size(struct top *t)
{
	struct winsize ws;
	const char *c = getenv("COLUMNS"), *l = getenv("LINES");

	t->cols = 80;
	t->rows = 24;
	if (t->tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
		t->cols = ws.ws_col;
		t->rows = ws.ws_row;
		return;
	}
	if (c && atoi(c) >= 40)
		t->cols = (unsigned)atoi(c);
	if (l && atoi(l) >= 10)
		t->rows = (unsigned)atoi(l);
}

static void term_enter(struct top *t)
{
	struct termios raw;

	if (!t->tty)
		return;
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
		raw = t->saved;
		/* Keys arrive one by one, unechoed; Ctrl-C still signals (ISIG). */
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
			t->keys = 1;
	}
	/*
	 * The alternate screen keeps the shell's scrollback; hide the cursor.
	 * With -n the last frame stays on the screen instead.
	 */
	if (t->alt)
		fputs("\033[?1049h", stdout);
	fputs("\033[?25l\033[H\033[2J", stdout);
	fflush(stdout);
}

static void term_leave(struct top *t)
{
	if (!t->tty)
		return;
	fputs(t->alt ? "\033[?25h\033[?1049l" : "\033[?25h", stdout);
	fflush(stdout);
	if (t->keys)
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
	t->keys = 0;
	t->tty = 0; /* once */
}

/* One line of the frame, cut to the width on a terminal, none past its last row. */
__attribute__((format(printf, 2, 3))) static void out(struct top *t, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	size_t n;

	if (t->max_lines && t->lines >= t->max_lines)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = strlen(line);
	if (t->tty && n > t->cols)
		n = t->cols;
	while (n && line[n - 1] == ' ') /* an empty last column */
		n--;
	fwrite(line, 1, n, t->f);
	if (t->tty)
		fputs("\033[K", t->f); /* clear what the last frame left on this row */
	fputc('\n', t->f);
	t->lines++;
}

/* Between sections: an empty row on a terminal; none in plain frames, whose end it marks. */
static void gap(struct top *t)
{
	if (t->tty)
		out(t, "%s", "");
}

/* Per second over dt; -1 when the counter went back (a new segment, a reset). */
static double rate(uint64_t now, uint64_t before, double dt)
{
	if (dt <= 0 || now < before)
		return -1;
	return (double)(now - before) / dt;
}

/* "-", "0.4", "812", "12.3k", "4.1M" */
static const char *rate_str(double r, char *buf, size_t len)
{
	if (r < 0)
		snprintf(buf, len, "-");
	else if (r == 0)
		snprintf(buf, len, "0");
	else if (r < 10)
		snprintf(buf, len, "%.1f", r);
	else if (r < 10000)
		snprintf(buf, len, "%.0f", r);
	else if (r < 1e7)
		snprintf(buf, len, "%.1fk", r / 1e3);
	else
		snprintf(buf, len, "%.1fM", r / 1e6);
	return buf;
}

/* "0.3s", "12s", "4m02s", "-" */
static const char *age_str(uint64_t now, uint64_t then, char *buf, size_t len)
{
	if (!then || then > now)
		return "-";
	if (now - then < 10000000000ull)
		snprintf(buf, len, "%.1fs", (double)(now - then) / 1e9);
	else
		view_duration(now - then, buf, len);
	return buf;
}

/* "34M", "512K", "1.2G", "-" */
static const char *rss_str(uint64_t b, char *buf, size_t len)
{
	static const char unit[] = "BKMGT";
	double v = (double)b;
	unsigned u = 0;

	if (!b)
		return "-";
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, v < 10 && u ? "%.1f%c" : "%.0f%c", v, unit[u]);
	return buf;
}

static void draw_header(struct top *t, double dt)
{
	const struct view *v = &t->cur, *p = t->have_prev ? &t->prev : NULL;
	uint64_t in = 0, out_n = 0, dead = 0, pin = 0, pout = 0, pdead = 0;
	char up[24], clock[16], a[16], b[16], c[16], p50[16], p99[16], iv[24] = "-";
	struct shm_latency d;
	time_t now = (time_t)(v->taken_rt / 1000000000ull);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	view_duration(v->taken_rt > v->created_ns ? v->taken_rt - v->created_ns : 0, up,
		      sizeof(up));
	if (p)
		snprintf(iv, sizeof(iv), "%.3fs", dt);
	out(t, "ferry top: instance %s, %s, up %s, ferryd %d, %s, interval %s%s%s", v->instance,
	    v->state == SHM_ISTATE_DRAINING ? "DRAINING" : "running", up, v->supervisor_pid, clock,
	    iv, t->note[0] ? "  | " : "", t->note);
	t->note[0] = 0;
	/* In: what ingest handed to the pipeline; out, dead: what produce had Kafka confirm. */
	for (unsigned i = 0; i < v->n_stages; i++) {
		const struct view_stage *s = &v->stages[i], *ps = p ? &p->stages[i] : NULL;

		if (s->kind == SHM_WORKER_INGEST) {
			in += s->records_out;
			pin += ps ? ps->records_out : 0;
		} else if (s->kind == SHM_WORKER_PRODUCE) {
			out_n += s->records_out;
			dead += s->dead_letters;
			pout += ps ? ps->records_out : 0;
			pdead += ps ? ps->dead_letters : 0;
		}
	}
	if (p) {
		view_latency_delta(&v->latency, &p->latency, &d);
	} else {
		memset(&d, 0, sizeof(d));
	}
	out(t, "events/s in %s out %s, dead letters/s %s, latency p50 %s p99 %s (%llu delivered)",
	    rate_str(p ? rate(in, pin, dt) : -1, a, sizeof(a)),
	    rate_str(p ? rate(out_n, pout, dt) : -1, b, sizeof(b)),
	    rate_str(p ? rate(dead, pdead, dt) : -1, c, sizeof(c)),
	    view_us(view_latency_quantile(d.bucket, 0.50), p50, sizeof(p50)),
	    view_us(view_latency_quantile(d.bucket, 0.99), p99, sizeof(p99)),
	    (unsigned long long)d.count);
}

static int cpu_update(struct top *t)
{
	const struct view *v = &t->cur;
	uint64_t now = v->taken_ns;

	if (!t->cpu) {
		t->cpu = calloc(v->n_stages ? v->n_stages : 1, sizeof(*t->cpu));
		if (!t->cpu)
			return -ENOMEM;
	}
	for (unsigned i = 0; i < v->n_stages; i++) {
		const struct view_stage *s = &v->stages[i];
		struct cpu_track *c = &t->cpu[i];

		if (s->pid <= 0 || !s->cpu_ns || s->pid != c->pid || s->cpu_ns < c->val) {
			/* not sampled, or another process: start over */
			c->pid = s->pid;
			c->val = s->cpu_ns;
			c->t = 0;
			c->pct = -1;
		} else if (s->cpu_ns != c->val) {
			if (c->t)
				c->pct =
					100.0 * (double)(s->cpu_ns - c->val) / (double)(now - c->t);
			c->val = s->cpu_ns;
			c->t = now;
		} else if (c->t && now - c->t > TOP_CPU_IDLE_NS) {
			c->pct = 0;
		}
	}
	return 0;
}

static void draw_stages(struct top *t, double dt)
{
	const struct view *v = &t->cur, *p = t->have_prev ? &t->prev : NULL;
	int wide = t->cols >= 90;

	gap(t);
	out(t, "%-12s %-10s %-8s %5s %6s %3s %6s %6s %8s %5s%s", "STAGE", "STATE", "SAYS", "CPU%",
	    "RSS", "RST", "IN/s", "OUT/s", "INFLIGHT", "BEAT", wide ? "  DEAD/s" : "");
	for (unsigned i = 0; i < v->n_stages; i++) {
		const struct view_stage *s = &v->stages[i], *ps = p ? &p->stages[i] : NULL;
		char cpu[16] = "-", rss[16], in[16], o[16], beat[16], dead[16] = "";

		if (t->cpu && t->cpu[i].pct >= 0)
			snprintf(cpu, sizeof(cpu), "%.1f", t->cpu[i].pct);
		if (wide)
			snprintf(dead, sizeof(dead), "  %6s",
				 rate_str(ps ? rate(s->dead_letters, ps->dead_letters, dt) : -1, o,
					  sizeof(o)));
		out(t, "%-12.12s %-10s %-8s %5s %6s %3u %6s %6s %8u %5s%s", s->name,
		    view_sstate_name(s->state), view_wstate_name(s->wstate), cpu,
		    s->pid > 0 ? rss_str(s->rss_bytes, rss, sizeof(rss)) : "-", s->restarts,
		    rate_str(ps ? rate(s->records_in, ps->records_in, dt) : -1, in, sizeof(in)),
		    rate_str(ps ? rate(s->records_out, ps->records_out, dt) : -1, o, sizeof(o)),
		    s->inflight,
		    s->pid > 0 ? age_str(v->taken_ns, s->heartbeat_ns, beat, sizeof(beat)) : "-",
		    dead);
	}
}

static void draw_rings(struct top *t, double dt)
{
	const struct view *v = &t->cur, *p = t->have_prev ? &t->prev : NULL;

	gap(t);
	out(t, "%-20s %6s %9s %10s %10s %9s", "RING", "FILL", "USED", "WRITES/s", "READS/s",
	    "RECORDS");
	for (unsigned i = 0; i < v->n_rings; i++) {
		const struct ring_stats *r = &v->rings[i], *pr = p ? &p->rings[i] : NULL;
		char used[16], w[16], rd[16];

		out(t, "%-20.20s %5.1f%% %9s %10s %10s %9llu", r->name,
		    100.0 * (double)r->used / (double)r->capacity,
		    view_human(r->used, used, sizeof(used)),
		    rate_str(pr ? rate(r->published, pr->published, dt) : -1, w, sizeof(w)),
		    rate_str(pr ? rate(r->published - r->records, pr->published - pr->records, dt)
				: -1,
			     rd, sizeof(rd)),
		    (unsigned long long)r->records);
	}
}

struct src_row {
	unsigned i;
	int rank; /* 0 FAILING, 1 retrying, 2 the rest */
	double busy;
	uint64_t lag_ns;
	double rx, ack;
};

/* The unhealthiest, then the busiest, then the most behind, then configuration order. */
static int src_cmp(const void *a, const void *b)
{
	const struct src_row *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank - y->rank;
	if (x->busy != y->busy)
		return x->busy > y->busy ? -1 : 1;
	if (x->lag_ns != y->lag_ns)
		return x->lag_ns > y->lag_ns ? -1 : 1;
	return x->i < y->i ? -1 : 1;
}

static void draw_sources(struct top *t, double dt, unsigned budget)
{
	const struct view *v = &t->cur, *p = t->have_prev ? &t->prev : NULL;
	unsigned nw, shown;
	struct src_row *rows;

	if (!v->n_sources)
		return;
	rows = calloc(v->n_sources, sizeof(*rows));
	if (!rows)
		return;
	for (unsigned i = 0; i < v->n_sources; i++) {
		const struct view_source *s = &v->sources[i], *ps = p ? &p->sources[i] : NULL;
		struct src_row *r = &rows[i];

		r->i = i;
		r->rank = s->kind == MSG_SOURCE_REPLAY	     ? 2
			  : s->health == SHM_SOURCE_FAILING  ? 0
			  : s->health == SHM_SOURCE_RETRYING ? 1
							     : 2;
		r->rx = ps ? rate(s->received, ps->received, dt) : -1;
		r->ack = ps ? rate(s->acked, ps->acked, dt) : -1;
		r->busy = (r->rx > 0 ? r->rx : 0) + (r->ack > 0 ? r->ack : 0) + (double)s->inflight;
		r->lag_ns = s->oldest_ns ? v->taken_ns - s->oldest_ns : 0;
	}
	qsort(rows, v->n_sources, sizeof(*rows), src_cmp);
	/* The name column takes what the others leave, within reason. */
	nw = t->cols > 61 + 16 ? t->cols - 61 : 16;
	if (nw > 48)
		nw = 48;
	gap(t);
	out(t, "%-*s %-8s %7s %7s %8s %6s  %s", (int)nw, "SOURCE", "HEALTH", "RECV/s", "ACKED/s",
	    "INFLIGHT", "LAG", "LAST_ERROR");
	shown = v->n_sources <= budget ? v->n_sources : (budget ? budget - 1 : 0);
	for (unsigned k = 0; k < shown; k++) {
		const struct view_source *s = &v->sources[rows[k].i];
		const char *name = s->name;
		size_t len = strlen(name);
		char rx[16], ack[16], lag[16];

		/* The end of a long URL says which queue it is. */
		if (len > nw)
			name += len - nw;
		out(t, "%-*.*s %-8s %7s %7s %8llu %6s  %s", (int)nw, (int)nw, name,
		    s->kind == MSG_SOURCE_REPLAY ? "-" : view_health_name(s->health),
		    rate_str(rows[k].rx, rx, sizeof(rx)), rate_str(rows[k].ack, ack, sizeof(ack)),
		    (unsigned long long)s->inflight,
		    age_str(v->taken_ns, s->oldest_ns, lag, sizeof(lag)), s->last_error);
	}
	if (shown < v->n_sources)
		out(t, "... and %u more sources", v->n_sources - shown);
	free(rows);
}

struct ten_row {
	unsigned i;
	double ok_s, dead_s;
};

static int ten_cmp_ctx(const struct ten_row *x, const struct ten_row *y, const struct view *v)
{
	const struct view_tenant *a = &v->tenants[x->i], *b = &v->tenants[y->i];

	if ((a->failed > 0) != (b->failed > 0))
		return a->failed ? -1 : 1;
	if (x->dead_s != y->dead_s)
		return x->dead_s > y->dead_s ? -1 : 1;
	if (x->ok_s != y->ok_s)
		return x->ok_s > y->ok_s ? -1 : 1;
	if (a->failed != b->failed)
		return a->failed > b->failed ? -1 : 1;
	if (a->ok != b->ok)
		return a->ok > b->ok ? -1 : 1;
	return x->i < y->i ? -1 : 1;
}

static int ten_cmp(const void *a, const void *b, void *ctx)
{
	return ten_cmp_ctx(a, b, ctx);
}

/* The same (stage, slot) in the previous snapshot, if it still names the same tenant. */
static const struct view_tenant *prev_tenant(const struct view *p, const struct view_tenant *vt)
{
	unsigned lo = 0, hi = p->n_tenants;

	/* Both are ordered by stage, then slot. */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct view_tenant *m = &p->tenants[mid];

		if (m->stage < vt->stage || (m->stage == vt->stage && m->slot < vt->slot))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < p->n_tenants && p->tenants[lo].stage == vt->stage &&
	    p->tenants[lo].slot == vt->slot && !strcmp(p->tenants[lo].name, vt->name))
		return &p->tenants[lo];
	return NULL;
}

static void draw_tenants(struct top *t, double dt, unsigned budget)
{
	const struct view *v = &t->cur, *p = t->have_prev ? &t->prev : NULL;
	struct ten_row *rows;
	unsigned shown;

	if (!v->n_tenants)
		return;
	rows = calloc(v->n_tenants, sizeof(*rows));
	if (!rows)
		return;
	for (unsigned i = 0; i < v->n_tenants; i++) {
		const struct view_tenant *vt = &v->tenants[i];
		const struct view_tenant *pt = p ? prev_tenant(p, vt) : NULL;

		rows[i].i = i;
		/* A tenant new since the last frame counts from 0. */
		rows[i].ok_s = !p ? -1 : rate(vt->ok, pt ? pt->ok : 0, dt);
		rows[i].dead_s = !p ? -1 : rate(vt->failed, pt ? pt->failed : 0, dt);
	}
	qsort_r(rows, v->n_tenants, sizeof(*rows), ten_cmp, (void *)v);
	gap(t);
	out(t, "%-24s %-12s %8s %7s %11s %11s", "TENANT", "STAGE", "EVENTS/s", "DEAD/s", "EVENTS",
	    "DEAD");
	shown = v->n_tenants <= budget ? v->n_tenants : (budget ? budget - 1 : 0);
	for (unsigned k = 0; k < shown; k++) {
		const struct view_tenant *vt = &v->tenants[rows[k].i];
		char ok[16], dead[16];

		out(t, "%-24.24s %-12s %8s %7s %11llu %11llu", vt->name, v->stages[vt->stage].name,
		    rate_str(rows[k].ok_s, ok, sizeof(ok)),
		    rate_str(rows[k].dead_s, dead, sizeof(dead)), (unsigned long long)vt->ok,
		    (unsigned long long)vt->failed);
	}
	if (shown < v->n_tenants)
		out(t, "... and %u more tenants", v->n_tenants - shown);
	free(rows);
}

/* Draw t->cur (rates against t->prev) as one frame, written at once. */
static int draw(struct top *t)
{
	const struct view *v = &t->cur;
	double dt = t->have_prev ? (double)(v->taken_ns - t->prev.taken_ns) / 1e9 : 0;
	unsigned fixed, avail, src_b = 0, ten_b = 0, sec = t->tty ? 2 : 1;
	char *buf = NULL;
	size_t len = 0;

	t->f = open_memstream(&buf, &len);
	if (!t->f)
		return -ENOMEM;
	t->lines = 0;
	t->max_lines = t->tty ? (t->rows > 1 ? t->rows - 1 : 1) : 0;
	if (t->tty)
		fputs("\033[H", t->f);
	/* Stages and rings always; sources and tenants share the rows left. */
	fixed = 2 + sec + v->n_stages + sec + v->n_rings;
	avail = t->rows > fixed + 1 ? t->rows - 1 - fixed : 0;
	if (v->n_sources)
		avail = avail > sec ? avail - sec : 0;
	if (v->n_tenants)
		avail = avail > sec ? avail - sec : 0;
	if (v->n_sources && v->n_tenants) {
		ten_b = v->n_tenants < avail / 3 ? v->n_tenants : avail / 3;
		if (ten_b < 3)
			ten_b = 3;
		src_b = avail > ten_b ? avail - ten_b : 3;
		if (src_b > v->n_sources) { /* few sources: the rest to the tenants */
			ten_b += src_b - v->n_sources;
			src_b = v->n_sources;
		}
	} else {
		src_b = ten_b = avail;
	}
	/* At least a few rows each, even on a small screen (plain frames are not cut). */
	if (src_b < 3)
		src_b = 3;
	if (ten_b < 3)
		ten_b = 3;
	draw_header(t, dt);
	draw_stages(t, dt);
	draw_rings(t, dt);
	draw_sources(t, dt, src_b);
	draw_tenants(t, dt, ten_b);
	if (t->tty)
		fputs("\033[J", t->f); /* clear below: the last frame may have been longer */
	else
		fputc('\n', t->f); /* an empty line ends a plain frame */
	if (fclose(t->f) != 0) {
		free(buf);
		t->f = NULL;
		return -ENOMEM;
	}
	t->f = NULL;
	if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) == EOF) {
		free(buf);
		return -EIO;
	}
	free(buf);
	return 0;
}

/*
 * Is t->seg still the instance's segment? 0: yes; 1: ferryd made a new
 * one, now attached (rates start over); -ENOENT: gone (ferryd stopped);
 * -EAGAIN: a new one is there but not attachable yet (being made).
 */
static int top_check(struct top *t, char *err, size_t errlen)
{
	struct shm_segment *seg = NULL;
	struct stat a, b;
	int r;

	if (stat(t->seg->path, &a) < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	if (fstat(t->seg->fd, &b) < 0)
		return -errno;
	if (a.st_dev == b.st_dev && a.st_ino == b.st_ino &&
	    t->seg->hdr->created_ns == t->created_ns)
		return 0;
	r = shm_segment_open(t->instance, SHM_RDONLY, &seg, err, errlen);
	if (r == -ENOENT)
		return -ENOENT;
	if (r < 0)
		return -EAGAIN;
	shm_segment_close(t->seg);
	t->seg = seg;
	t->created_ns = seg->hdr->created_ns;
	view_free(&t->prev);
	t->have_prev = 0;
	free(t->cpu); /* the new segment may have other stages */
	t->cpu = NULL;
	return 1;
}

/*
 * Sleep until deadline (CLOCK_MONOTONIC ns), a key or a signal. Returns 0
 * at the deadline, 1 to quit, 2 when the terminal was resized.
 */
static int top_wait(struct top *t, uint64_t deadline, const sigset_t *unblocked)
{
	for (;;) {
		struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
		uint64_t now = now_ns();
		struct timespec ts;
		char c;

		if (top_quit)
			return 1;
		if (top_resized) {
			top_resized = 0;
			top_size(t);
			return 2; /* redraw at once in the new size */
		}
		if (now >= deadline)
			return 0;
		ts.tv_sec = (time_t)((deadline - now) / 1000000000ull);
		ts.tv_nsec = (long)((deadline - now) % 1000000000ull);
		/* Signals are blocked but here: no wake-up is lost between the check and the wait.
		 */
		if (ppoll(&pfd, t->keys ? 1 : 0, &ts, unblocked) > 0 && (pfd.revents & POLLIN)) {
			while (read(STDIN_FILENO, &c, 1) == 1)
				if (c == 'q' || c == 'Q')
					return 1;
		}
	}
}

static int parse_interval(const char *s, uint64_t *ret)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (errno || end == s || *end || !(d >= 0.05) || d > 3600)
		return -EINVAL;
	*ret = (uint64_t)(d * 1e9);
	return 0;
}

int top_main(const char *instance, int argc, char **argv)
{
	static const struct option opts[] = {
		{"delay", required_argument, NULL, 'd'},
		{"iterations", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct top t = {.instance = instance, .interval_ns = 1000000000ull};
	struct sigaction sa = {0};
	sigset_t block, old;
	unsigned long iterations = 0, frames = 0;
	uint64_t next, gone_ns = 0;
	char err[512], *end;
	int c, r, w, resized = 0, rc = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+d:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (parse_interval(optarg, &t.interval_ns) < 0) {
				fprintf(stderr,
					"ferryctl top: -d: want seconds in [0.05, 3600], got "
					"'%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'n':
			errno = 0;
			iterations = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || !iterations || optarg[0] == '-') {
				fprintf(stderr, "ferryctl top: -n: want a number > 0, got '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ferryctl top: unexpected '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	r = shm_segment_open(instance, SHM_RDONLY, &t.seg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ferryctl: %s\n", err);
		return EXIT_SYSTEM;
	}
	t.created_ns = t.seg->hdr->created_ns;
	t.tty = isatty(STDOUT_FILENO);
	t.alt = !iterations;
	top_size(&t);

	/* Blocked except while waiting, so a signal always ends the wait it may race with. */
	sa.sa_handler = on_quit;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_winch;
	sigaction(SIGWINCH, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGWINCH);
	sigprocmask(SIG_BLOCK, &block, &old);

	term_enter(&t);
	next = now_ns();
	for (;;) {
		if (!gone_ns) {
			r = view_take(t.seg, &t.cur, err, sizeof(err));
			if (r < 0) {
				term_leave(&t);
				fprintf(stderr, "ferryctl: %s\n", err);
				rc = EXIT_SYSTEM;
				break;
			}
			r = cpu_update(&t);
			if (r == 0)
				r = draw(&t);
			view_free(&t.prev);
			t.prev = t.cur;
			memset(&t.cur, 0, sizeof(t.cur));
			t.have_prev = 1;
			if (r < 0) {
				term_leave(&t);
				if (r !=
				    -EIO) /* stdout gone (a closed pipe): nothing to say it on */
					fprintf(stderr, "ferryctl: %s\n", strerror(-r));
				rc = EXIT_SYSTEM;
				break;
			}
			if (iterations && ++frames >= iterations)
				break;
		}
		/* On a fixed cadence, so rates do not drift with drawing time. */
		if (!resized) {
			next += t.interval_ns;
			if (next < now_ns())
				next = now_ns();
		}
		w = top_wait(&t, next, &old);
		if (w == 1)
			break;
		resized = w == 2;
		r = top_check(&t, err, sizeof(err));
		if (r == -ENOENT) {
			/* ferryd replaces its segment by unlinking it first: give it a moment. */
			if (!gone_ns)
				gone_ns = now_ns();
			if (now_ns() - gone_ns < TOP_GONE_GRACE_NS)
				continue;
			term_leave(&t);
			fprintf(stderr,
				"ferryctl: %s: the segment is gone: ferryd of instance '%s' "
				"stopped\n",
				t.seg->path, instance);
			rc = EXIT_SYSTEM;
			break;
		}
		gone_ns = 0;
		if (r == 1)
			snprintf(t.note, sizeof(t.note),
				 "a new segment (ferryd restarted): reattached, rates start over");
		else if (r == -EAGAIN)
			snprintf(t.note, sizeof(t.note), "a new segment is being made: waiting");
		else if (r < 0)
			snprintf(t.note, sizeof(t.note), "%s: %s", t.seg->path, strerror(-r));
	}
	term_leave(&t);
	sigprocmask(SIG_SETMASK, &old, NULL);
	view_free(&t.prev);
	view_free(&t.cur);
	free(t.cpu);
	shm_segment_close(t.seg);
	return rc;
}
