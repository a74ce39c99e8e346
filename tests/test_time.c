/* time: clock, deadlines, the virtual test clock. */

PT_TEST(time_monotonic) {
    int64_t a = pr_now(), b;
    int i;
    for (i = 0; i < 1000; i++) {
        b = pr_now();
        PT_REQUIRE(b >= a);
        a = b;
    }
}

PT_TEST(time_deadline_in_saturates) {
    PT_EQ_INT(pr_deadline_in(INT64_MAX), PR_FOREVER);
    PT_EQ_INT(pr_deadline_in(INT64_MAX - 1), PR_FOREVER);
    PT_CHECK(pr_deadline_in(-5) < pr_now());
    PT_CHECK(pr_deadline_in(INT64_MIN) < 0); /* far past, no overflow */
    PT_CHECK(pr_deadline_in(1000) >= pr_now() + 999);
}

PT_TEST(time_deadline_min) {
    PT_EQ_INT(pr_deadline_min(5, PR_FOREVER), 5);
    PT_EQ_INT(pr_deadline_min(PR_FOREVER, -1), -1);
}

PT_TEST(time_virtual_clock) {
    pr__time_test_clock_virtual(1, 1000);
    PT_EQ_INT(pr_now(), 1000);
    pr__time_test_clock_advance(250);
    PT_EQ_INT(pr_now(), 1250);
    PT_EQ_INT(pr_deadline_in(10), 1260);
    pr__time_test_clock_virtual(0, 0);
    PT_CHECK(pr_now() != 1250 || 1); /* real clock again */
}

const pt_suite pt_suite_time = { "time", {
    PT_ENTRY(time_monotonic),
    PT_ENTRY(time_deadline_in_saturates),
    PT_ENTRY(time_deadline_min),
    PT_ENTRY(time_virtual_clock),
    {0, 0} } };
