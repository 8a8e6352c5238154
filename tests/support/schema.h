/* tests/support/schema.h - checks messages a test read back from Kafka
 * against kurir's JSON Schemas (docs/schemas/), through
 * tests/schemas/validate (Python, Debian's python3-jsonschema). */
#ifndef TESTS_SUPPORT_SCHEMA_H
#define TESTS_SUPPORT_SCHEMA_H

#include <jansson.h>

/* Validates every element of `docs` (a JSON array: events, or header maps
 * for "dlq-headers") against schema `name`: "status", "latest", "reply",
 * "results", "dlq-headers", "job-headers", "send", "campaign", "contacts".
 * Finds the validator under $KURIR_SOURCE_DIR (CTest sets it). Returns 0
 * when all are valid, 1 when any is not (the validator prints one line per
 * problem on stderr), -1 when it could not run. An empty array is valid. */
int schema_check(const char *name, json_t *docs);

#endif /* TESTS_SUPPORT_SCHEMA_H */
