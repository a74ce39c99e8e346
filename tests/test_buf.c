/* buf: buffers, slices, number parsing. */

PT_TEST(buf_append_and_terminator) {
    pr_buf b;
    int i;
    pr_buf_init(&b);
    PT_CHECK(b.data == NULL);
    PT_EQ_ERR(pr_buf_append(&b, "ab", 2), PR_OK);
    PT_EQ_STR(b.data, "ab");
    for (i = 0; i < 1000; i++) PT_REQUIRE(pr_buf_append_str(&b, "xyz") == PR_OK);
    PT_EQ_INT((long long)b.len, 3002);
    PT_CHECK(b.data[b.len] == 0);
    PT_EQ_ERR(pr_buf_printf(&b, "-%d-%s", 7, "q"), PR_OK);
    PT_EQ_STR(b.data + 3002, "-7-q");
    pr_buf_deinit(&b);
    PT_CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    pr_buf_deinit(NULL);
}

PT_TEST(buf_consume_and_clear) {
    pr_buf b;
    pr_buf_init(&b);
    pr_buf_append_str(&b, "hello world");
    pr_buf_consume(&b, 6);
    PT_EQ_STR(b.data, "world");
    pr_buf_consume(&b, 100);
    PT_EQ_INT((long long)b.len, 0);
    PT_EQ_STR(b.data, "");
    pr_buf_append_str(&b, "x");
    pr_buf_clear(&b);
    PT_EQ_STR(b.data, "");
    pr_buf_deinit(&b);
}

PT_TEST(buf_enomem_leaves_buffer_intact) {
    pr_buf b;
    pr_buf_init(&b);
    PT_EQ_ERR(pr_buf_append_str(&b, "keep"), PR_OK);
    pt_alloc_fail_nth(1);
    PT_EQ_ERR(pr_buf_reserve(&b, 1 << 20), PR_ENOMEM);
    pt_alloc_fail_nth(0);
    PT_EQ_STR(b.data, "keep");
    PT_EQ_ERR(pr_buf_reserve(&b, SIZE_MAX), PR_ENOMEM);
    PT_EQ_ERR(pr_buf_reserve(&b, SIZE_MAX - 2), PR_ENOMEM);
    PT_EQ_STR(b.data, "keep");
    pr_buf_deinit(&b);
}

PT_TEST(buf_slices) {
    pr_slice a = pr_slice_cstr("Content-Type"), b = pr_slice_cstr("content-type");
    PT_CHECK(!pr_slice_eq(a, b));
    PT_CHECK(pr_slice_ieq(a, b));
    PT_CHECK(!pr_slice_ieq(a, pr_slice_cstr("content-typ")));
    PT_CHECK(pr_ascii_icmp(pr_slice_cstr("abc"), pr_slice_cstr("ABD")) < 0);
    PT_CHECK(pr_ascii_icmp(pr_slice_cstr("abc"), pr_slice_cstr("AB")) > 0);
    PT_CHECK(pr_ascii_icmp(pr_slice_cstr("\xc3\xa9"), pr_slice_cstr("\xc3\x89")) != 0);
    PT_EQ_INT((long long)pr_slice_cstr(NULL).len, 0);
    a = pr_slice_trim(pr_slice_cstr(" \t v a \t"));
    PT_EQ_MEM(a.ptr, "v a", 3);
    PT_EQ_INT((long long)a.len, 3);
    PT_EQ_INT((long long)pr_slice_trim(pr_slice_cstr(" \t ")).len, 0);
}

PT_TEST(buf_parse_i64) {
    int64_t v = 7;
    PT_EQ_ERR(pr_parse_i64(pr_slice_cstr("0"), &v), PR_OK);
    PT_EQ_INT(v, 0);
    PT_EQ_ERR(pr_parse_i64(pr_slice_cstr("-42"), &v), PR_OK);
    PT_EQ_INT(v, -42);
    PT_EQ_ERR(pr_parse_i64(pr_slice_cstr("+42"), &v), PR_OK);
    PT_EQ_INT(v, 42);
    PT_EQ_ERR(pr_parse_i64(pr_slice_cstr("9223372036854775807"), &v), PR_OK);
    PT_EQ_INT(v, INT64_MAX);
    PT_EQ_ERR(pr_parse_i64(pr_slice_cstr("-9223372036854775808"), &v), PR_OK);
    PT_EQ_INT(v, INT64_MIN);
    v = 7;
    PT_EQ_ERR(pr_parse_i64(pr_slice_cstr("9223372036854775808"), &v), PR_ELIMIT);
    PT_EQ_ERR(pr_parse_i64(pr_slice_cstr("-9223372036854775809"), &v), PR_ELIMIT);
    PT_EQ_ERR(pr_parse_i64(pr_slice_cstr(""), &v), PR_EINVAL);
    PT_EQ_ERR(pr_parse_i64(pr_slice_cstr("-"), &v), PR_EINVAL);
    PT_EQ_ERR(pr_parse_i64(pr_slice_cstr(" 1"), &v), PR_EINVAL);
    PT_EQ_ERR(pr_parse_i64(pr_slice_cstr("1 "), &v), PR_EINVAL);
    PT_EQ_ERR(pr_parse_i64(pr_slice_cstr("0x10"), &v), PR_EINVAL);
    PT_EQ_INT(v, 7);
}

PT_TEST(buf_parse_u64) {
    uint64_t v = 7;
    pr_slice part = { "12345", 3 };
    PT_EQ_ERR(pr_parse_u64(pr_slice_cstr("18446744073709551615"), &v), PR_OK);
    PT_CHECK(v == UINT64_MAX);
    PT_EQ_ERR(pr_parse_u64(pr_slice_cstr("18446744073709551616"), &v), PR_ELIMIT);
    PT_EQ_ERR(pr_parse_u64(pr_slice_cstr("99999999999999999999999"), &v), PR_ELIMIT);
    PT_EQ_ERR(pr_parse_u64(pr_slice_cstr("-1"), &v), PR_EINVAL);
    PT_EQ_ERR(pr_parse_u64(pr_slice_cstr("+1"), &v), PR_EINVAL);
    PT_EQ_ERR(pr_parse_u64(part, &v), PR_OK);
    PT_CHECK(v == 123);
}

const pt_suite pt_suite_buf = { "buf", {
    PT_ENTRY(buf_append_and_terminator),
    PT_ENTRY(buf_consume_and_clear),
    PT_ENTRY(buf_enomem_leaves_buffer_intact),
    PT_ENTRY(buf_slices),
    PT_ENTRY(buf_parse_i64),
    PT_ENTRY(buf_parse_u64),
    {0, 0} } };
