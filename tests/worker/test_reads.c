/* tests/worker/test_reads.c - read actions through `kurir run`: a real
 * Kafka broker, a kurir worker, the stateful provider stand-ins, and the
 * results read back from the results topic (checked against
 * docs/schemas/event-results.schema.json by the reader). Every read action
 * is played on at least one provider, every provider plays at least one,
 * and each read returns what the jobs before it wrote. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "tests/support/kafka.h"
#include "tests/support/support.h"
#include "tests/worker/stack.h"

static struct stack e;
/* Every status event read so far: the jobs' events interleave, and one
 * job's wait must not lose another's. */
static json_t *seen_status;

static void start_stack(void)
{
    stack_start(&e, support_redis());
}

static void stop_stack(void)
{
    stack_stop(&e);
    json_decref(seen_status);
    seen_status = NULL;
}

TestSuite(reads, .init = start_stack, .fini = stop_stack, .timeout = 240);

/* Waits for the status event that puts job `job` in `state`. */
static json_t *wait_state(struct tk_reader *r, const char *job,
                          const char *state)
{
    const char *const want[] = {"job_id", job, "state", state, NULL};

    if (seen_status == NULL)
        seen_status = json_array();
    json_t *ev = tk_reader_wait_kept(r, seen_status, want, 60000);
    if (ev == NULL) {
        char *all = json_dumps(seen_status, JSON_COMPACT);
        cr_log_error("status events: %s", all);
        free(all);
        support_proc_log_dump(&e.kurir);
    }
    cr_assert(ev != NULL, "no %s event for %s", state, job);
    return ev;
}

/* The provider message id of job `job`'s submitted event (caller frees). */
static char *wait_submitted_id(struct tk_reader *r, const char *job)
{
    json_t *ev = wait_state(r, job, "submitted");
    const char *pid =
        json_string_value(json_object_get(ev, "provider_message_id"));

    cr_assert(pid != NULL && pid[0] != '\0', "%s has no provider id", job);
    char *out = strdup(pid);
    json_decref(ev);
    return out;
}

/* Reads results events into by_job ({job_id: [events in order]}, every
 * job's) until every job of `ids` has its last page (or an error). */
static void collect_results(struct tk_reader *r, json_t *by_job,
                            const char *const *ids, int timeout_ms)
{
    int64_t deadline = support_now_ms() + timeout_ms;

    for (;;) {
        size_t open = 0;
        for (size_t i = 0; ids[i] != NULL; i++) {
            json_t *evs = json_object_get(by_job, ids[i]);
            json_t *last = json_array_get(evs, json_array_size(evs) - 1);
            if (last == NULL ||
                !json_is_true(json_object_get(last, "last_page")))
                open++;
        }
        if (open == 0)
            return;
        int64_t left = deadline - support_now_ms();
        if (left <= 0)
            break;
        json_t *ev = tk_reader_wait_json(r, (const char *const[]){NULL},
                                         (int)left, NULL);
        if (ev == NULL)
            break;
        const char *id = json_string_value(json_object_get(ev, "job_id"));
        cr_assert(id != NULL, "a results event without job_id");
        json_t *evs = json_object_get(by_job, id);
        if (evs == NULL) {
            evs = json_array();
            json_object_set_new(by_job, id, evs);
        }
        json_array_append_new(evs, ev);
    }
    support_proc_log_dump(&e.kurir);
    char *seen = json_dumps(by_job, JSON_COMPACT);
    cr_fatal("results missing; got %s", seen);
}

/* The items of job `id`'s only results event, checked: one page, no
 * error, the action and provider named. */
static json_t *items_of(json_t *by_job, const char *id, const char *action,
                        const char *provider)
{
    json_t *evs = json_object_get(by_job, id);
    cr_assert(eq(sz, json_array_size(evs), 1), "%s: one results event", id);
    json_t *ev = json_array_get(evs, 0);
    cr_assert(eq(str, (char *)json_string_value(json_object_get(ev, "action")),
                 (char *)action));
    cr_assert(eq(str,
                 (char *)json_string_value(json_object_get(ev, "provider")),
                 (char *)provider));
    bool no_error = json_is_null(json_object_get(ev, "error"));
    cr_assert(no_error, "%s: an error", id);
    cr_assert(eq(int, (int)json_integer_value(json_object_get(ev, "page")), 1));
    return json_object_get(ev, "items");
}

/* True when some item of `items` has field `key` equal to `value`. */
static bool has_item(json_t *items, const char *key, const char *value)
{
    size_t i;
    json_t *it;

    json_array_foreach(items, i, it)
    {
        const char *v = json_string_value(json_object_get(it, key));
        if (v != NULL && strcmp(v, value) == 0)
            return true;
    }
    return false;
}

static void produce_contacts(const char *id, const char *json)
{
    stack_produce(&e, e.topic_contacts, id, json);
}

/* Produces read job `id` with `field` set to `value` (stolen) when given. */
static void produce_read(const char *id, const char *account,
                         const char *action, const char *field, json_t *value)
{
    json_t *job = json_pack("{s:s, s:s, s:s}", "id", id, "account", account,
                            "action", action);

    if (field != NULL)
        json_object_set_new(job, field, value);
    char *text = json_dumps(job, JSON_COMPACT);
    produce_contacts(id, text);
    free(text);
    json_decref(job);
}

Test(reads, every_read_action_returns_what_was_written)
{
    struct tk_reader status, results;

    tk_reader_open(&status, e.brokers, e.topic_status);
    tk_reader_open(&results, e.brokers, e.topic_results);

    /* What the reads will find: writes and sends on every provider. */
    produce_contacts("w-it-group",
                     "{\"id\": \"w-it-group\", \"account\": \"hooks-intime\", "
                     "\"action\": \"group-create\", \"groups\": [\"Kunder\"]}");
    produce_contacts("w-it-nix",
                     "{\"id\": \"w-it-nix\", \"account\": \"hooks-intime\", "
                     "\"action\": \"blocklist-add\", "
                     "\"msisdns\": [\"46705550101\"]}");
    produce_contacts(
        "w-it-rem",
        "{\"id\": \"w-it-rem\", \"account\": \"hooks-intime\", "
        "\"action\": \"reminder-add\", \"reminders\": [{\"appointmentdate\": "
        "\"2031-04-25T08:30:00\", \"organizer_firstname\": \"Karl\", "
        "\"organizer_lastname\": \"Svensson\", \"organizer_title\": \"Dr\", "
        "\"attendant_firstname\": \"Anna\", \"attendant_lastname\": \"Berg\", "
        "\"attendant_mobile\": \"46705550102\"}]}");
    produce_contacts("w-p1-block",
                     "{\"id\": \"w-p1-block\", \"account\": \"hooks-ip1\", "
                     "\"action\": \"blocklist-add\", "
                     "\"msisdns\": [\"46705550103\"]}");
    produce_contacts("w-p1-sender",
                     "{\"id\": \"w-p1-sender\", \"account\": \"hooks-ip1\", "
                     "\"action\": \"register-sender\", \"from\": \"Kurir\"}");
    produce_contacts("w-p1-contact",
                     "{\"id\": \"w-p1-contact\", \"account\": \"hooks-ip1\", "
                     "\"action\": \"contact-upsert\", \"contacts\": "
                     "[{\"msisdn\": \"46705550104\", \"first_name\": \"Rut\", "
                     "\"groups\": [\"Stammis\"]}]}");
    produce_contacts("w-jo-contact",
                     "{\"id\": \"w-jo-contact\", \"account\": \"shop\", "
                     "\"action\": \"contact-upsert\", \"contacts\": "
                     "[{\"msisdn\": \"46705550105\", \"first_name\": \"Ola\", "
                     "\"groups\": [\"Stammis\"]}]}");
    produce_contacts("w-jo-block",
                     "{\"id\": \"w-jo-block\", \"account\": \"shop\", "
                     "\"action\": \"blocklist-add\", "
                     "\"msisdns\": [\"46705550106\"]}");
    stack_produce(&e, e.topic_send, "s-legacy",
                  "{\"id\": \"s-legacy\", \"account\": \"bulk-legacy\", "
                  "\"to\": [\"46705550107\"], \"text\": \"hej\"}");
    stack_produce(&e, e.topic_send, "s-ip1",
                  "{\"id\": \"s-ip1\", \"account\": \"hooks-ip1\", "
                  "\"to\": [\"46705550108\", \"46705550109\"], "
                  "\"text\": \"hej\"}");
    stack_produce(&e, e.topic_send, "s-jojka",
                  "{\"id\": \"s-jojka\", \"account\": \"shop\", "
                  "\"to\": [\"46705550110\"], \"text\": \"hej\"}");
    stack_produce(&e, e.topic_campaign, "c-jojka",
                  "{\"id\": \"c-jojka\", \"account\": \"shop\", "
                  "\"action\": \"create\", \"name\": \"Vår\", "
                  "\"to\": [\"46705550111\", \"46705550112\"], "
                  "\"text\": \"rea\"}");
    const char *writes[] = {"w-it-group",   "w-it-nix",    "w-it-rem",
                            "w-p1-block",   "w-p1-sender", "w-p1-contact",
                            "w-jo-contact", "w-jo-block",  NULL};
    for (size_t i = 0; writes[i] != NULL; i++)
        json_decref(wait_state(&status, writes[i], "delivered"));
    char *legacy_id = wait_submitted_id(&status, "s-legacy");
    char *batch_id = wait_submitted_id(&status, "s-ip1");
    char *jojka_id = wait_submitted_id(&status, "s-jojka");
    char *camp_id = wait_submitted_id(&status, "c-jojka");

    /* The reads. */
    produce_read("r-it-groups", "hooks-intime", "list-groups", NULL, NULL);
    produce_read("r-it-nix", "hooks-intime", "list-blocklist", NULL, NULL);
    produce_read("r-it-rem", "hooks-intime", "list-reminders", NULL, NULL);
    produce_read("r-lg-balance", "bulk-legacy", "balance", NULL, NULL);
    produce_read("r-lg-status", "bulk-legacy", "message-status", "provider_id",
                 json_string(legacy_id));
    produce_read("r-p1-status", "hooks-ip1", "message-status", "provider_id",
                 json_string(batch_id));
    produce_read("r-p1-camp", "hooks-ip1", "campaign-status", "provider_id",
                 json_string(batch_id));
    produce_read("r-p1-block", "hooks-ip1", "list-blocklist", NULL, NULL);
    produce_read("r-p1-check", "hooks-ip1", "check-blocklist", "msisdns",
                 json_pack("[s]", "46705550103"));
    produce_read("r-p1-senders", "hooks-ip1", "list-senders", NULL, NULL);
    produce_read("r-p1-contacts", "hooks-ip1", "export-contacts", NULL, NULL);
    produce_read("r-p1-groups", "hooks-ip1", "list-groups", NULL, NULL);
    produce_read("r-jo-contacts", "shop", "export-contacts", NULL, NULL);
    produce_read("r-jo-groups", "shop", "list-groups", "msisdns",
                 json_pack("[s]", "46705550105"));
    produce_read("r-jo-check", "shop", "check-blocklist", "msisdns",
                 json_pack("[s]", "46705550106"));
    produce_read("r-jo-status", "shop", "message-status", "provider_id",
                 json_string(jojka_id));
    produce_read("r-jo-camp", "shop", "campaign-status", "provider_id",
                 json_string(camp_id));
    /* A read the provider refuses (iP.1: a number not listed is 404): one
     * results event with the error and no items. */
    produce_read("r-p1-miss", "hooks-ip1", "check-blocklist", "msisdns",
                 json_pack("[s]", "46705550199"));
    /* A read the provider lacks: rejected, with the codec's line. */
    produce_read("r-it-balance", "hooks-intime", "balance", NULL, NULL);

    const char *reads[] = {"r-it-groups",   "r-it-nix",      "r-it-rem",
                           "r-lg-balance",  "r-lg-status",   "r-p1-status",
                           "r-p1-camp",     "r-p1-block",    "r-p1-check",
                           "r-p1-senders",  "r-p1-contacts", "r-p1-groups",
                           "r-jo-contacts", "r-jo-groups",   "r-jo-check",
                           "r-jo-status",   "r-jo-camp",     NULL};
    json_t *by_job = json_object();
    collect_results(&results, by_job, reads, 90000);

    json_t *items = items_of(by_job, "r-it-groups", "list-groups", "intime");
    cr_assert(has_item(items, "name", "Kunder"), "no Kunder group");
    items = items_of(by_job, "r-it-nix", "list-blocklist", "intime");
    cr_assert(has_item(items, "msisdn", "46705550101"), "nix misses it");
    items = items_of(by_job, "r-it-rem", "list-reminders", "intime");
    cr_assert(eq(sz, json_array_size(items), 1), "one reminder");
    items = items_of(by_job, "r-lg-balance", "balance", "ip1-legacy");
    cr_assert(eq(sz, json_array_size(items), 1), "one balance");
    cr_assert(json_object_get(json_array_get(items, 0), "balance") != NULL);
    items = items_of(by_job, "r-lg-status", "message-status", "ip1-legacy");
    cr_assert(has_item(items, "provider_id", legacy_id), "legacy status");
    items = items_of(by_job, "r-p1-status", "message-status", "ip1");
    cr_assert(has_item(items, "id", batch_id), "the batch read");
    items = items_of(by_job, "r-p1-camp", "campaign-status", "ip1");
    cr_assert(eq(sz, json_array_size(items), 2), "the batch's two messages");
    items = items_of(by_job, "r-p1-block", "list-blocklist", "ip1");
    cr_assert(has_item(items, "msisdn", "46705550103"), "blacklist misses it");
    items = items_of(by_job, "r-p1-check", "check-blocklist", "ip1");
    cr_assert(has_item(items, "msisdn", "46705550103"), "check");
    items = items_of(by_job, "r-p1-senders", "list-senders", "ip1");
    cr_assert(has_item(items, "sender", "Kurir"), "sender not listed");
    items = items_of(by_job, "r-p1-contacts", "export-contacts", "ip1");
    json_t *props = json_object_get(json_array_get(items, 0), "properties");
    cr_assert(
        eq(str,
           (char *)json_string_value(json_object_get(props, "phoneNumber")),
           "+46705550104"),
        "ip1 contact");
    items = items_of(by_job, "r-p1-groups", "list-groups", "ip1");
    cr_assert(has_item(items, "labelName", "Stammis"), "ip1 label");
    items = items_of(by_job, "r-jo-contacts", "export-contacts", "jojka");
    cr_assert(has_item(items, "msisdn", "46705550105"), "jojka contact");
    items = items_of(by_job, "r-jo-groups", "list-groups", "jojka");
    cr_assert(ge(sz, json_array_size(items), 1), "jojka groups");
    items = items_of(by_job, "r-jo-check", "check-blocklist", "jojka");
    json_t *blocked = json_object_get(json_array_get(items, 0), "blocked");
    bool is_blocked = json_is_true(blocked);
    cr_assert(is_blocked, "46705550106 is not blocked");
    items = items_of(by_job, "r-jo-status", "message-status", "jojka");
    cr_assert(has_item(items, "provider_id", jojka_id), "jojka status");
    items = items_of(by_job, "r-jo-camp", "campaign-status", "jojka");
    cr_assert(has_item(items, "msisdn", "46705550111"), "campaign status");

    const char *miss[] = {"r-p1-miss", NULL};
    collect_results(&results, by_job, miss, 30000);
    json_t *mev = json_array_get(json_object_get(by_job, "r-p1-miss"), 0);
    bool has_error = json_is_object(json_object_get(mev, "error"));
    cr_assert(has_error, "no error on the refused read");
    cr_assert(eq(sz, json_array_size(json_object_get(mev, "items")), 0));

    /* Every read ends delivered; the one InTime lacks is rejected. */
    for (size_t i = 0; reads[i] != NULL; i++)
        json_decref(wait_state(&status, reads[i], "delivered"));
    json_t *ev = wait_state(&status, "r-it-balance", "rejected");
    const char *msg = json_string_value(
        json_object_get(json_object_get(ev, "error"), "message"));
    cr_assert(msg != NULL && strstr(msg, "intime has no balance read") != NULL,
              "%s", msg ? msg : "(none)");
    json_decref(ev);
    json_decref(by_job);
    free(legacy_id);
    free(batch_id);
    free(jojka_id);
    free(camp_id);
    tk_reader_close(&results);
    tk_reader_close(&status);
}

/* Jojka pages its address book 1000 at a time: a read of 1001 contacts is
 * two results events, in order, the second the last. */
Test(reads, paged_export_follows_every_page)
{
    struct tk_reader status, results;
    size_t cap = 1001 * 96 + 256;
    char *job = malloc(cap);
    size_t n =
        (size_t)snprintf(job, cap,
                         "{\"id\": \"w-many\", \"account\": "
                         "\"bulk-jojka\", \"action\": \"contact-upsert\", "
                         "\"contacts\": [");

    tk_reader_open(&status, e.brokers, e.topic_status);
    tk_reader_open(&results, e.brokers, e.topic_results);
    for (int i = 0; i < 1001; i++)
        n += (size_t)snprintf(job + n, cap - n,
                              "%s{\"msisdn\": \"4670600%04d\", "
                              "\"first_name\": \"K%d\"}",
                              i ? ", " : "", i, i);
    snprintf(job + n, cap - n, "]}");
    produce_contacts("w-many", job);
    free(job);
    json_decref(wait_state(&status, "w-many", "delivered"));

    produce_contacts("r-many",
                     "{\"id\": \"r-many\", \"account\": \"bulk-jojka\", "
                     "\"action\": \"export-contacts\"}");
    const char *ids[] = {"r-many", NULL};
    json_t *by_job = json_object();
    collect_results(&results, by_job, ids, 60000);
    json_t *evs = json_object_get(by_job, "r-many");
    cr_assert(eq(sz, json_array_size(evs), 2), "two pages");
    json_t *p1 = json_array_get(evs, 0), *p2 = json_array_get(evs, 1);
    cr_assert(eq(int, (int)json_integer_value(json_object_get(p1, "page")), 1));
    bool first_not_last = json_is_false(json_object_get(p1, "last_page"));
    cr_assert(first_not_last);
    cr_assert(eq(sz, json_array_size(json_object_get(p1, "items")), 1000));
    cr_assert(eq(int, (int)json_integer_value(json_object_get(p2, "page")), 2));
    bool second_last = json_is_true(json_object_get(p2, "last_page"));
    cr_assert(second_last);
    cr_assert(eq(sz, json_array_size(json_object_get(p2, "items")), 1));
    json_decref(wait_state(&status, "r-many", "delivered"));
    /* The stand-in was asked for the second page, and for no third. */
    cr_assert(ge(int, stack_standin_count(&e, "offset=1000"), 1));
    cr_assert(eq(int, stack_standin_count(&e, "offset=2000"), 0));
    json_decref(by_job);
    tk_reader_close(&results);
    tk_reader_close(&status);
}
