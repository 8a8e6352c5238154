/* tests/support/metrics.h - reading a worker's /metrics in tests: scrape
 * it, check it with promtool, read one sample's value.
 *
 * For an end-to-end test that runs jobs through a worker and then checks
 * that the counters moved by the right amounts:
 *
 *     char *before = support_metrics_scrape(port);
 *     ... publish 3 jobs, wait for their events ...
 *     char *after = support_metrics_scrape(port);
 *     support_metrics_promtool(after);          // every line valid
 *     double d = support_metric(after, "kurir_jobs_consumed_total",
 *                               "topic=\"sms.send\",outcome=\"done\"") -
 *                support_metric(before, ...);
 *     cr_assert(eq(dbl, d, 3.0));                                        */
#ifndef TESTS_SUPPORT_METRICS_H
#define TESTS_SUPPORT_METRICS_H

/* GETs http://127.0.0.1:port/metrics; fails the test unless it answers
 * 200. Returns the page (malloc'd). */
char *support_metrics_scrape(int port);

/* Runs `promtool check metrics` on the page and fails the test, printing
 * promtool's words, unless it exits 0 with no complaint. Skips when
 * promtool is missing (fails under KURIR_TEST_REQUIRE=1; tests/run
 * installs it). */
void support_metrics_promtool(const char *page);

/* Returns the value of the sample `name{labels}` on the page, labels
 * written exactly as rendered (`a="x",b="y"`, in the metric's order), or
 * NULL/"" for a sample without labels; 0 when the page lacks the sample
 * (a counter not yet counted), so differences work. */
double support_metric(const char *page, const char *name, const char *labels);

#endif /* TESTS_SUPPORT_METRICS_H */
