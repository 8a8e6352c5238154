/* tests/worker/test_mask.c - secrets masked in every encoding a codec
 * uses, names shown (worker/mask.h). */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "worker/mask.h"

static struct account acct_with(const char *name1, const char *v1,
                                const char *name2, const char *v2)
{
    struct account a = {0};

    a.name = "acct";
    a.creds[0] = (struct account_cred){(char *)name1, (char *)v1};
    a.creds[1] = (struct account_cred){(char *)name2, (char *)v2};
    a.ncreds = 2;
    return a;
}

static void check(const struct account *a, const char *in, const char *want)
{
    size_t n;
    char *got = mask_secrets(a, in, strlen(in), &n);

    cr_assert(eq(str, got, (char *)want));
    cr_assert(eq(sz, n, strlen(want)));
    free(got);
}

Test(mask, which_names_are_secret)
{
    cr_assert(mask_cred_is_secret("api_key"));
    cr_assert(mask_cred_is_secret("hash"));
    cr_assert(mask_cred_is_secret("password"));
    cr_assert(mask_cred_is_secret("token_of_tomorrow"));
    cr_assert(not(mask_cred_is_secret("user")));
    cr_assert(not(mask_cred_is_secret("account")));
}

Test(mask, every_encoding)
{
    struct account a = acct_with("account", "ip1-1000", "password", "k&y s<");

    /* raw, %-encoded, form-encoded and XML-escaped */
    check(&a, "pass=k&y s<;", "pass=***;");
    check(&a, "pass=k%26y%20s%3C&acc=ip1-1000", "pass=***&acc=ip1-1000");
    check(&a, "pass=k%26y+s%3C&x", "pass=***&x");
    check(&a, "<passwd>k&amp;y s&lt;</passwd>", "<passwd>***</passwd>");
    /* The account id is shown everywhere. */
    check(&a, "<konto>ip1-1000</konto>", "<konto>ip1-1000</konto>");
}

Test(mask, whole_tokens_only)
{
    struct account a = acct_with("user", "u", "hash", "h");

    check(&a, "create.ashx?user=u&hash=h", "create.ashx?user=u&hash=***");
    check(&a, "hash hh h.", "hash hh ***.");
    check(&a, "", "");
}
