/* JSON parser and writer: known values, escapes, limits, malformed inputs, round trips. */
#include "harness.h"
#include "io/json.h"
#include "core/s2.h"
#include <string.h>
#include <stdlib.h>

/* Parses text (NUL-terminated) with default limits. */
static int parse(const char *text, s2_json **j) {
    return s2_json_parse(text, strlen(text), "t.json", NULL, j);
}

/* Parse must fail and the message must contain `want`. */
static void expect_fail(const char *text, const char *want) {
    s2_json *j = NULL;
    int rc = parse(text, &j);
    CHECK_MSG(rc != 0, "parse of '%s' should fail", text);
    CHECK(j == NULL);
    CHECK_MSG(strstr(sam2c_last_error(), want) != NULL, "'%s': message '%s' lacks '%s'", text,
              sam2c_last_error(), want);
    CHECK_MSG(strchr(sam2c_last_error(), '\n') == NULL, "message is not one line");
    s2_json_free(j);
}

TEST(json_values) {
    s2_json *j;
    REQUIRE(parse(" {\"a\": 1, \"b\": [true, false, null, -2.5e3, \"x\"], \"c\": {\"d\": {\"e\": 7}}} ", &j) == 0);
    CHECK(j->type == S2_JOBJ);
    CHECK_EQ_INT(j->n, 3);
    int64_t i;
    CHECK(s2_json_int(j, "a", &i) && i == 1);
    const s2_json *b = s2_json_get(j, "b");
    REQUIRE(b && b->type == S2_JARR && b->n == 5);
    CHECK(s2_json_at(b, 0)->type == S2_JBOOL && s2_json_at(b, 0)->b);
    CHECK(s2_json_at(b, 1)->type == S2_JBOOL && !s2_json_at(b, 1)->b);
    CHECK(s2_json_at(b, 2)->type == S2_JNULL);
    CHECK(s2_json_at(b, 3)->num == -2500.0);
    CHECK(strcmp(s2_json_at(b, 4)->str, "x") == 0);
    CHECK(s2_json_at(b, 5) == NULL && s2_json_at(b, -1) == NULL);
    const s2_json *e = s2_json_path(j, "c.d.e");
    CHECK(e && e->type == S2_JNUM && e->num == 7);
    CHECK(s2_json_path(j, "c.d") == s2_json_get(s2_json_get(j, "c"), "d"));
    CHECK(s2_json_path(j, "c.x.e") == NULL && s2_json_path(j, "a.b") == NULL);
    double d;
    CHECK(!s2_json_num(j, "b", &d) && !s2_json_int(j, "zz", &i));
    CHECK(s2_json_str(j, "a") == NULL);
    bool bv;
    CHECK(!s2_json_bool(j, "a", &bv));
    s2_json_free(j);
}

TEST(json_numbers) {
    s2_json *j;
    REQUIRE(parse("[0, -0, 1.5, 1e2, 1E-2, 123456789012345678, 0.1, -1.25e+300]", &j) == 0);
    double want[] = {0, -0.0, 1.5, 100, 0.01, 123456789012345678.0, 0.1, -1.25e300};
    for (int k = 0; k < 8; k++) CHECK(j->items[k].num == want[k]);
    s2_json_free(j);
    REQUIRE(parse("{\"x\": 2.5, \"y\": 3}", &j) == 0);
    int64_t i = 0;
    CHECK(!s2_json_int(j, "x", &i));
    CHECK(s2_json_int(j, "y", &i) && i == 3);
    s2_json_free(j);
    expect_fail("01", "t.json:1:2: unexpected content after the value");
    expect_fail("1.", "invalid number");
    expect_fail("-", "invalid number");
    expect_fail("1e", "invalid number");
    expect_fail("+1", "unexpected character");
    expect_fail(".5", "unexpected character");
    expect_fail("1e999", "number out of range");
    expect_fail("NaN", "unexpected character");
}

TEST(json_strings_escapes) {
    s2_json *j;
    REQUIRE(parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"", &j) == 0);
    const char *want = "a\"b\\c/d\b\f\n\r\tA\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
    CHECK(j->type == S2_JSTR && strcmp(j->str, want) == 0);
    CHECK_EQ_INT(j->str_len, strlen(want));
    s2_json_free(j);
    REQUIRE(parse("\"x\\u0000y\"", &j) == 0); /* embedded NUL kept through str_len */
    CHECK_EQ_INT(j->str_len, 3);
    CHECK(j->str[1] == 0 && j->str[2] == 'y');
    s2_json_free(j);
    REQUIRE(parse("\"caf\xC3\xA9 \xF0\x9F\x98\x80\"", &j) == 0); /* raw UTF-8 */
    CHECK(strcmp(j->str, "caf\xC3\xA9 \xF0\x9F\x98\x80") == 0);
    s2_json_free(j);
    expect_fail("\"\\ud83d\"", "unpaired high surrogate");
    expect_fail("\"\\ud83d\\u0041\"", "unpaired high surrogate");
    expect_fail("\"\\ude00\"", "lone low surrogate");
    expect_fail("\"\\u12G4\"", "invalid \\u escape");
    expect_fail("\"\\x\"", "invalid escape");
    expect_fail("\"abc", "t.json:1:1: unterminated string");
    expect_fail("\"a\tb\"", "t.json:1:3: control character in string");
    expect_fail("\"\xC0\xAF\"", "invalid UTF-8"); /* overlong '/' */
    expect_fail("\"\xED\xA0\x80\"", "invalid UTF-8"); /* encoded surrogate */
    expect_fail("\"\xF4\x90\x80\x80\"", "invalid UTF-8"); /* beyond U+10FFFF */
    expect_fail("\"\xE2\x82\"", "invalid UTF-8"); /* truncated sequence */
}

TEST(json_malformed) {
    expect_fail("", "t.json:1:1: unexpected end of input");
    expect_fail("   ", "t.json:1:4: unexpected end of input");
    expect_fail("{\"a\" 1}", "t.json:1:6: expected ':'");
    expect_fail("{\"a\":1,}", "t.json:1:8: expected a string key");
    expect_fail("[1,]", "t.json:1:4: unexpected character");
    expect_fail("[1 2]", "t.json:1:4: expected ',' or ']'");
    expect_fail("{\"a\":1\n,\n\"b\" 2}", "t.json:3:5: expected ':'");
    expect_fail("{'a':1}", "expected a string key");
    expect_fail("[1, 2", "unexpected end of input in array");
    expect_fail("{\"a\":1", "unexpected end of input in object");
    expect_fail("tru", "unexpected character");
    expect_fail("nul", "unexpected character");
    expect_fail("{} {}", "unexpected content after the value");
    expect_fail("[1]]", "unexpected content after the value");
    /* a NUL byte inside the given length is not JSON */
    s2_json *j = NULL;
    CHECK(s2_json_parse("[1,\0 2]", 7, "t.json", NULL, &j) != 0 && j == NULL);
    CHECK(strstr(sam2c_last_error(), "t.json:1:4: unexpected character") != NULL);
}

/* Nesting n arrays deep: "[[[...]]]". */
static char *nested(int n) {
    char *s = malloc((size_t)2 * n + 1);
    for (int i = 0; i < n; i++) { s[i] = '['; s[2 * n - 1 - i] = ']'; }
    s[2 * n] = 0;
    return s;
}

TEST(json_limits) {
    s2_json *j = NULL;
    char *ok = nested(64), *deep = nested(65), *huge = nested(100000);
    CHECK(parse(ok, &j) == 0);
    s2_json_free(j);
    j = NULL;
    expect_fail(deep, "t.json:1:65: nesting deeper than 64");
    expect_fail(huge, "nesting deeper than 64"); /* no stack overflow */
    s2_json_limits lim = {3, 0};
    CHECK(s2_json_parse("[[[1]]]", 7, "t.json", &lim, &j) == 0);
    s2_json_free(j);
    j = NULL;
    CHECK(s2_json_parse("[[[[1]]]]", 9, "t.json", &lim, &j) != 0);
    CHECK(strstr(sam2c_last_error(), "nesting deeper than 3") != NULL);
    s2_json_limits small = {0, 8};
    CHECK(s2_json_parse("[1,2,3,4,5]", 11, "t.json", &small, &j) == SAM2C_ERR_LIMIT && j == NULL);
    CHECK(strstr(sam2c_last_error(), "t.json: 11 bytes exceeds the JSON size limit of 8") != NULL);
    free(ok);
    free(deep);
    free(huge);
}

TEST(json_duplicates_and_file) {
    s2_json *j;
    REQUIRE(parse("{\"k\": 1, \"k\": 2}", &j) == 0);
    int64_t i = 0;
    CHECK(s2_json_int(j, "k", &i) && i == 2); /* last wins, as in Python */
    s2_json_free(j);
    char path[512];
    snprintf(path, sizeof path, "%s/x.json", s2t_tmpdir());
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fputs("{\n  \"a\": [1,\n  2,,]\n}", f);
    fclose(f);
    j = NULL;
    CHECK(s2_json_parse_file(path, NULL, &j) != 0 && j == NULL);
    char want[600];
    snprintf(want, sizeof want, "%s:3:5: unexpected character", path);
    CHECK_MSG(strstr(sam2c_last_error(), want) != NULL, "got '%s'", sam2c_last_error());
    snprintf(path, sizeof path, "%s/missing.json", s2t_tmpdir());
    CHECK(s2_json_parse_file(path, NULL, &j) == SAM2C_ERR_IO);
    CHECK(strstr(sam2c_last_error(), "missing.json: No such file") != NULL);
}

/* Writes v with s2_jw_num and returns the text (static). */
static const char *numtext(double v) {
    static char out[64];
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_num(&w, v);
    snprintf(out, sizeof out, "%s", w.buf ? w.buf : "");
    s2_jw_free(&w);
    return out;
}

TEST(json_writer_numbers) {
    CHECK(strcmp(numtext(0.1), "0.1") == 0);
    CHECK(strcmp(numtext(1.0), "1") == 0);
    CHECK(strcmp(numtext(-2.5), "-2.5") == 0);
    CHECK(strcmp(numtext(1e300), "1e+300") == 0);
    CHECK(strcmp(numtext(0.1 + 0.2), "0.30000000000000004") == 0);
    CHECK(strcmp(numtext((double)0.1f), "0.10000000149011612") == 0);
    CHECK(strcmp(numtext(NAN), "null") == 0);
    CHECK(strcmp(numtext(INFINITY), "null") == 0);
    CHECK(strcmp(numtext(-INFINITY), "null") == 0);
    /* every written number reads back bit-exactly */
    double vals[] = {5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 3.141592653589793,
                     -123456.789, 1.0 / 3.0, 2.0 / 3.0, 9007199254740993.0, 1e23, 0.5};
    for (int k = 0; k < 10; k++) {
        const char *t = numtext(vals[k]);
        s2_json *j;
        REQUIRE(parse(t, &j) == 0);
        CHECK_MSG(j->num == vals[k], "%s does not round-trip", t);
        s2_json_free(j);
    }
}

TEST(json_writer_structure) {
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_obj_begin(&w);
    s2_jw_key(&w, "s");
    s2_jw_str(&w, "q\"b\\n\n\t\x01\xC3\xA9");
    s2_jw_key(&w, "a");
    s2_jw_arr_begin(&w);
    s2_jw_int(&w, -9007199254740993LL);
    s2_jw_bool(&w, true);
    s2_jw_null(&w);
    s2_jw_arr_begin(&w);
    s2_jw_arr_end(&w);
    s2_jw_obj_begin(&w);
    s2_jw_obj_end(&w);
    s2_jw_raw(&w, "{\"r\":1}");
    s2_jw_arr_end(&w);
    s2_jw_key(&w, "bad");
    s2_jw_str(&w, "\xFF" "x");
    s2_jw_obj_end(&w);
    REQUIRE(!w.failed && w.buf);
    const char *want = "{\"s\":\"q\\\"b\\\\n\\n\\t\\u0001\xC3\xA9\",\"a\":[-9007199254740993,true,null,[],{},"
                       "{\"r\":1}],\"bad\":\"\xEF\xBF\xBDx\"}";
    CHECK_MSG(strcmp(w.buf, want) == 0, "got %s", w.buf);
    CHECK_EQ_INT(w.depth, 0);
    /* the output parses and the string reads back */
    s2_json *j;
    REQUIRE(parse(w.buf, &j) == 0);
    CHECK(strcmp(s2_json_str(j, "s"), "q\"b\\n\n\t\x01\xC3\xA9") == 0);
    s2_json_free(j);
    s2_jw_free(&w);
}

TEST(json_round_trip) {
    const char *text = "{\"name\":\"sam2 \\u00e9\\ud83d\\ude00\",\"dims\":[1,3,256,256],"
                       "\"scale\":0.0078125,\"neg\":-1e-07,\"flags\":{\"x\":true,\"y\":null},"
                       "\"nul\":\"a\\u0000b\",\"empty\":[],\"o\":{}}";
    s2_json *a, *b;
    REQUIRE(parse(text, &a) == 0);
    s2_jw w;
    s2_jw_init(&w);
    s2_jw_value(&w, a);
    REQUIRE(!w.failed);
    const char *want = "{\"name\":\"sam2 \xC3\xA9\xF0\x9F\x98\x80\",\"dims\":[1,3,256,256],"
                       "\"scale\":0.0078125,\"neg\":-1e-07,\"flags\":{\"x\":true,\"y\":null},"
                       "\"nul\":\"a\\u0000b\",\"empty\":[],\"o\":{}}";
    CHECK_MSG(strcmp(w.buf, want) == 0, "got %s", w.buf);
    REQUIRE(parse(w.buf, &b) == 0);
    CHECK(strcmp(s2_json_str(b, "name"), s2_json_str(a, "name")) == 0);
    CHECK(s2_json_get(b, "nul")->str_len == 3);
    double d;
    CHECK(s2_json_num(b, "neg", &d) && d == -1e-07);
    s2_json_free(a);
    s2_json_free(b);
    s2_jw_free(&w);
}

/* The model configuration fixture parses and answers dotted lookups. */
TEST(json_fixture_config) {
    if (!s2t_fixtures()) { s2t_skip("fixtures missing"); return; }
    s2_json *j;
    REQUIRE(s2_json_parse_file(s2t_fx("micro/config.json"), NULL, &j) == 0);
    CHECK(j->type == S2_JOBJ && j->n == 14);
    const s2_json *trunk = s2_json_path(j, "model_cfg_yaml_equivalent.image_encoder.trunk");
    int64_t v = 0;
    CHECK(s2_json_int(trunk, "embed_dim", &v) && v == 32);
    const s2_json *stages = s2_json_get(trunk, "stages");
    REQUIRE(stages && stages->n == 4);
    CHECK(stages->items[0].num == 1 && stages->items[1].num == 2 && stages->items[2].num == 3);
    const s2_json *pe = s2_json_path(j, "model_cfg_yaml_equivalent.image_encoder.neck.position_encoding");
    bool norm = false;
    CHECK(s2_json_bool(pe, "normalize", &norm) && norm);
    CHECK(s2_json_get(pe, "scale") && s2_json_get(pe, "scale")->type == S2_JNULL);
    CHECK(strcmp(s2_json_str(j, "sam2_commit"), "2b90b9f5ceec907a1c18123530e92e794ad901a4") == 0);
    double off = 0;
    CHECK(s2_json_num(j, "obj_score_bias_offset", &off) && off == 1.9);
    s2_json_free(j);
    REQUIRE(s2_json_parse_file(s2t_fx("micro/generation_info.json"), NULL, &j) == 0);
    s2_json_free(j);
}
