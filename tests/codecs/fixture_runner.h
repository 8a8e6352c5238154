/* tests/codecs/fixture_runner.h - runs a provider's data-driven codec cases.
 *
 * fixture_run_provider("jojka") walks $FIXTURES/jojka/ (CTest sets
 * FIXTURES to tests/codecs/fixtures) and runs every case directory in name
 * order. Adding a case means adding files, never code (STYLE §4.9).
 *
 * A case directory holds ONE input:
 *   job.json      a job (its "type" picks the topic; none is a send):
 *                 job_parse, codec->check, codec->encode;
 *   poll.json     {"op": "poll_status" | "poll_replies" | "read" |
 *                  "cancel" | "campaign_cancel", "provider_id": "...",
 *                  "since": <Unix s>}: codec->encode_poll;
 *   inbound.http  a callback the provider makes to us: first line
 *                 "METHOD /callbacks/<account>/<status|inbound>[?query]",
 *                 then headers, a blank line, the body: codec->callback;
 * and what to expect:
 *   request.http, request2.http, request3.http ...  the calls the input
 *                 must encode to, in order, and no more: first line
 *                 "METHOD URL", then "Name: value" headers in the order
 *                 the codec adds them, a blank line, then the body bytes
 *                 exactly (one final newline, which editors add, is not
 *                 part of the body; a body without one is fine too);
 *   response.http the provider's canned answer to the first call (or to
 *                 call "call" of params.json): "HTTP/1.1 200 OK", headers
 *                 (Content-Type and Retry-After are passed on), a blank
 *                 line, the body (a final newline dropped as above);
 *   result.json   the normalised outcome, compared with json_equal: for a
 *                 decode, a call_result; for a poll answer or a callback,
 *                 a callback_result; {"error": "<errstr>"} when the step
 *                 that ran last (job_parse, check, encode, encode_poll,
 *                 decode, decode_poll, callback) returned -1. Empty
 *                 strings, zero numbers and empty lists are left out (see
 *                 fixture_call_json below for the field names).
 * and, optionally:
 *   account.json  the account (also read from the provider directory as the
 *                 default for its cases): {"name", "base_url",
 *                 "credentials": {name: value}, "default_sender",
 *                 "webhook_token", "callback_url"};
 *   params.json   {"now": Unix s (default 1700000000), "first": 0,
 *                  "count": (default all of "to"), "call": 0,
 *                  "decode": "call" | "poll"} ("decode" picks decode() or
 *                 decode_poll() for a poll.json case; the default is
 *                 decode_poll for poll_status and poll_replies, decode
 *                 otherwise).
 *
 * FIXTURES_UPDATE=1 in the environment writes what the codec produced over
 * request*.http and result.json, for writing new cases; review the diff:
 * golden files come from the providers' documents, not from the code. */
#ifndef TESTS_CODECS_FIXTURE_RUNNER_H
#define TESTS_CODECS_FIXTURE_RUNNER_H

#include <jansson.h>

#include "codecs/codec.h"

/* Runs every case of `provider`; prints one line per failing case (and what
 * differed) to stderr. Returns the number of failed cases, or -1 when the
 * provider directory is missing or has no cases. */
int fixture_run_provider(const char *provider);

/* Runs one case directory (an absolute or cwd-relative path) for `codec`.
 * Returns 0 when it passed, -1 (with the difference printed) when not. */
int fixture_run_case(const struct codec *codec, const char *dir);

/* The JSON form of a call_result that result.json holds: {"outcome",
 * "retry_after_ms", "provider_id", "provider_status", "error_code",
 * "error_message", "recipients": [{"outcome", "provider_id",
 * "provider_status", "error_code", "error_message"}], "data"}. New
 * reference. */
json_t *fixture_call_json(const struct call_result *res);

/* The JSON form of a callback_result: {"updates": [{"provider_id",
 * "provider_status", "state", "recipient", "transid", "error_code",
 * "error_message"}], "replies": [{"provider_id", "from", "to",
 * "received_at", "text"}], "answer_status", "answer_body",
 * "answer_content_type"}. New reference. */
json_t *fixture_callback_json(const struct callback_result *res);

#endif /* TESTS_CODECS_FIXTURE_RUNNER_H */
