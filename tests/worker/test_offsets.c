/* tests/worker/test_offsets.c - per-partition watermarks. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "worker/offsets.h"

Test(offsets, stores_only_contiguous_done_offsets)
{
    struct offsets *o = offsets_new();
    int64_t store = -1;

    for (int64_t off = 10; off < 15; off++)
        offsets_track(o, "sms.send", 0, off);
    bool moved = offsets_done(o, "sms.send", 0, 12, &store);
    cr_assert(not(moved), "12 done before 10 must not move the watermark");
    moved = offsets_done(o, "sms.send", 0, 11, &store);
    cr_assert(not(moved));
    moved = offsets_done(o, "sms.send", 0, 10, &store);
    cr_assert(moved);
    cr_assert(eq(i64, store, 13), "10..12 done: next to consume is 13");
    moved = offsets_done(o, "sms.send", 0, 14, &store);
    cr_assert(not(moved));
    moved = offsets_done(o, "sms.send", 0, 13, &store);
    cr_assert(moved);
    cr_assert(eq(i64, store, 15));
    cr_assert(eq(sz, offsets_pending(o), 0));
    offsets_free(o);
}

Test(offsets, partitions_are_independent_and_gaps_allowed)
{
    struct offsets *o = offsets_new();
    int64_t store = -1;

    offsets_track(o, "sms.send", 0, 100);
    offsets_track(o, "sms.send", 1, 5);
    offsets_track(o, "sms.send", 0, 107); /* a gap: compaction */
    bool moved = offsets_done(o, "sms.send", 1, 5, &store);
    cr_assert(moved);
    cr_assert(eq(i64, store, 6));
    moved = offsets_done(o, "sms.send", 0, 107, &store);
    cr_assert(not(moved));
    moved = offsets_done(o, "sms.send", 0, 100, &store);
    cr_assert(moved);
    cr_assert(eq(i64, store, 108));
    offsets_free(o);
}

Test(offsets, revoked_partition_is_forgotten)
{
    struct offsets *o = offsets_new();
    int64_t store = -1;

    offsets_track(o, "sms.send", 3, 1);
    offsets_track(o, "sms.send", 3, 2);
    offsets_forget(o, "sms.send", 3);
    cr_assert(eq(sz, offsets_pending(o), 0));
    bool moved = offsets_done(o, "sms.send", 3, 1, &store);
    cr_assert(not(moved), "a revoked partition's offsets are not stored");
    offsets_free(o);
}

Test(offsets, many_offsets_grow_the_ring)
{
    struct offsets *o = offsets_new();
    int64_t store = -1;

    for (int64_t off = 0; off < 1000; off++)
        offsets_track(o, "t", 0, off);
    for (int64_t off = 999; off >= 1; off--)
        cr_assert(not(offsets_done(o, "t", 0, off, &store)));
    bool moved = offsets_done(o, "t", 0, 0, &store);
    cr_assert(moved);
    cr_assert(eq(i64, store, 1000));
    offsets_free(o);
}
