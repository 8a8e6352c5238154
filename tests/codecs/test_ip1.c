/* tests/codecs/test_ip1.c - the iP.1 REST v2 codec against its golden cases
 * (tests/codecs/fixtures/ip1/, built from providers.md §3 and seed 002). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "codecs/codec.h"
#include "tests/codecs/fixture_runner.h"

Test(ip1, fixtures)
{
    int failed = fixture_run_provider("ip1");
    cr_assert(eq(int, failed, 0), "see the FAIL lines above");
}

Test(ip1, table)
{
    cr_expect(codec_ip1.has_callbacks);
    cr_expect(not(codec_ip1.polls));
    cr_expect(codec_find("ip1") == &codec_ip1);
}
