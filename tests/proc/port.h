/* SPDX-License-Identifier: MIT */
/*
 * port: a loopback TCP port for a test's peer (moto_server, the Pub/Sub
 * emulator, the registry fixture) or for a connection that must be refused.
 */
#ifndef FERRY_TESTS_PORT_H
#define FERRY_TESTS_PORT_H

/* A port on 127.0.0.1 that nothing listens on right now (the kernel's pick). */
int test_free_port(void);

#endif
