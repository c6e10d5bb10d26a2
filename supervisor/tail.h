/* SPDX-License-Identifier: MIT */
/*
 * tail: `ferryctl tail TOPIC`, the operator's first look at what ferry
 * produced. Consumes TOPIC from the beginning of every partition (assign,
 * no consumer group joined, nothing committed) and prints each record as
 * one JSON line:
 *
 *   {"partition":P,"offset":O,"key":"...","headers":{...},"schema_id":N,
 *    "type":"ferry.chat.v1.MessageSent","value":{...}}
 *
 * The value is decoded with the catalog compiled into ferryctl: the topic
 * names the catalog type, the Confluent wire header (common/wire.h) gives
 * the schema id and message indexes (checked against the compiled ones),
 * and the payload is printed in the proto3 JSON mapping (lowerCamelCase
 * names, 64-bit integers as strings, enums by name, bytes in base64,
 * google.protobuf.Timestamp as RFC 3339, fields at their default left
 * out), the form Confluent's and protobuf's own JSON printers give. A value
 * without a wire header (no registry configured) is decoded as the bare
 * protobuf ("schema_id": null). What cannot be decoded is printed in base64
 * ("value_b64") with the reason ("error").
 */
#ifndef FERRY_SUPERVISOR_TAIL_H
#define FERRY_SUPERVISOR_TAIL_H

/* argv[0] is "tail". Returns the exit code (0, 1 timeout, 100 usage, 111 system). */
int tail_main(int argc, char **argv);

#endif
