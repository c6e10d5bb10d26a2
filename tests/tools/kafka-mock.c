/* SPDX-License-Identifier: MIT */
/*
 * ferry-kafka-mock: a Kafka for development and tests. Hosts librdkafka's
 * mock cluster in a process of its own, so it outlives the clients that use
 * it, and serves any Kafka client on loopback ports until SIGTERM or SIGINT.
 *
 * Prints one line `bootstrap=HOST:PORT,...` on stdout once the brokers
 * listen, then writes "ready\n" to --ready-fd (if given) and closes it.
 *
 * The ports are chosen by the kernel: librdkafka 2.0.2's mock API has no
 * way to fix them. Any topic a client asks metadata for (a producer's
 * first message, a consumer's assign) is created on the spot with 4
 * partitions: create topics with -t to get their partition count right.
 * The mock keeps at most 5 MiB (and 100,000 message sets) per partition;
 * older data is dropped, as retention would.
 *
 * Exit codes (as s6): 0 ok (after SIGTERM/SIGINT), 100 usage, 111 system error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define EXIT_USAGE  100
#define EXIT_SYSTEM 111

#define MAX_TOPICS 64

struct mock_topic {
	char name[250]; /* Kafka allows 249 characters */
	int partitions;
	int replication; /* 0: min(brokers, 3) */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: ferry-kafka-mock [-b BROKERS] [-t TOPIC:PARTITIONS[:REPLICATION]]... "
		   "[--ready-fd N]\n"
		   "\n"
		   "  -b, --brokers N        brokers in the cluster (default 3)\n"
		   "  -t, --topic T:P[:R]    create topic T with P partitions, replication R\n"
		   "                         (default min(brokers, 3)); may be repeated\n"
		   "      --ready-fd N       write \"ready\\n\" to fd N once listening, then close "
		   "it\n"
		   "  -h, --help             this text\n"
		   "\n"
		   "Prints `bootstrap=HOST:PORT,...` on stdout, then serves until SIGTERM/SIGINT.\n"
		   "Ports are chosen by the kernel. A topic a client asks for is created with 4\n"
		   "partitions. Each partition keeps its last 5 MiB.\n");
}

/* Parse a whole decimal int in [min, max]; 0 or -EINVAL. */
static int parse_int(const char *s, int min, int max, int *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

/* "name:partitions[:replication]"; 0 or -EINVAL. */
static int parse_topic(const char *arg, struct mock_topic *t)
{
	const char *colon = strchr(arg, ':');
	char num[32], *colon2;
	size_t len;

	if (!colon || colon == arg)
		return -EINVAL;
	len = (size_t)(colon - arg);
	if (len >= sizeof(t->name) || strlen(colon + 1) >= sizeof(num))
		return -EINVAL;
	memcpy(t->name, arg, len);
	t->name[len] = 0;
	strcpy(num, colon + 1);
	t->replication = 0;
	colon2 = strchr(num, ':');
	if (colon2) {
		*colon2 = 0;
		if (parse_int(colon2 + 1, 1, 1000, &t->replication) < 0)
			return -EINVAL;
	}
	return parse_int(num, 1, 100000, &t->partitions);
}

int main(int argc, char **argv)
{
	enum { OPT_READY_FD = 256 };
	static const struct option opts[] = {
		{"brokers", required_argument, NULL, 'b'},
		{"topic", required_argument, NULL, 't'},
		{"ready-fd", required_argument, NULL, OPT_READY_FD},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct mock_topic topics[MAX_TOPICS];
	int ntopics = 0, brokers = 3, ready_fd = -1, c, sig, rc = EXIT_SYSTEM;
	rd_kafka_mock_cluster_t *mcluster = NULL;
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk = NULL;
	char errstr[512];
	sigset_t stop;

	while ((c = getopt_long(argc, argv, "b:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (parse_int(optarg, 1, 100, &brokers) < 0) {
				fprintf(stderr, "ferry-kafka-mock: bad broker count '%s' (1-100)\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 't':
			if (ntopics == MAX_TOPICS) {
				fprintf(stderr, "ferry-kafka-mock: at most %d topics\n",
					MAX_TOPICS);
				return EXIT_USAGE;
			}
			if (parse_topic(optarg, &topics[ntopics]) < 0) {
				fprintf(stderr,
					"ferry-kafka-mock: bad topic '%s' (want "
					"TOPIC:PARTITIONS[:REPLICATION])\n",
					optarg);
				return EXIT_USAGE;
			}
			for (int i = 0; i < ntopics; i++) {
				if (!strcmp(topics[i].name, topics[ntopics].name)) {
					fprintf(stderr,
						"ferry-kafka-mock: topic '%s' given twice\n",
						topics[i].name);
					return EXIT_USAGE;
				}
			}
			ntopics++;
			break;
		case OPT_READY_FD:
			if (parse_int(optarg, 0, INT_MAX, &ready_fd) < 0 ||
			    fcntl(ready_fd, F_GETFD) < 0) {
				fprintf(stderr, "ferry-kafka-mock: --ready-fd '%s' is no open fd\n",
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
	if (optind < argc) {
		fprintf(stderr, "ferry-kafka-mock: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}

	/*
	 * Block the stop signals before librdkafka starts its threads, so they
	 * inherit the mask and sigwait() below is the only taker. A reader that
	 * went away must not kill the cluster by SIGPIPE.
	 */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &stop, NULL) != 0)
		return EXIT_SYSTEM;
	signal(SIGPIPE, SIG_IGN);

	/*
	 * The handle only hosts the cluster: it never connects anywhere, and
	 * its notice that no bootstrap.servers are set is noise (level 5).
	 */
	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "client.id", "ferry-kafka-mock", errstr, sizeof(errstr)) !=
		    RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "ferry-kafka-mock: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		return EXIT_SYSTEM;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "ferry-kafka-mock: rd_kafka_new: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		return EXIT_SYSTEM;
	}
	mcluster = rd_kafka_mock_cluster_new(rk, brokers);
	if (!mcluster) {
		fprintf(stderr, "ferry-kafka-mock: cannot create a mock cluster of %d brokers\n",
			brokers);
		goto out;
	}
	for (int i = 0; i < ntopics; i++) {
		struct mock_topic *t = &topics[i];
		int repl = t->replication ? t->replication : (brokers < 3 ? brokers : 3);
		rd_kafka_resp_err_t err =
			rd_kafka_mock_topic_create(mcluster, t->name, t->partitions, repl);

		if (err) {
			fprintf(stderr, "ferry-kafka-mock: topic '%s': %s\n", t->name,
				rd_kafka_err2str(err));
			goto out;
		}
	}

	if (printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mcluster)) < 0 ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "ferry-kafka-mock: stdout: %s\n", strerror(errno));
		goto out;
	}
	if (ready_fd >= 0) {
		ssize_t n = write(ready_fd, "ready\n", 6);

		if (n != 6) {
			fprintf(stderr, "ferry-kafka-mock: --ready-fd %d: %s\n", ready_fd,
				n < 0 ? strerror(errno) : "short write");
			goto out;
		}
		close(ready_fd);
	}

	for (;;) {
		int r = sigwait(&stop, &sig);

		if (r == 0)
			break;
		if (r != EINTR) {
			fprintf(stderr, "ferry-kafka-mock: sigwait: %s\n", strerror(r));
			goto out;
		}
	}
	rc = 0;
out:
	if (mcluster)
		rd_kafka_mock_cluster_destroy(mcluster);
	rd_kafka_destroy(rk);
	return rc;
}
