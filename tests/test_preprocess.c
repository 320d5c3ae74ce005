/* Model-input preprocessing against the official predictors' tensors: the image path
 * (ToTensor, antialiased bilinear resize, Normalize) on the fixture images and on the
 * full-size originals (decoded with src/io/image.c), and the video path on the
 * already-resized frames. */
#include "harness.h"
#include "predict/preprocess.h"
#include "io/tensorfile.h"
#include "io/image.h"

#include <stdlib.h>
#include <string.h>

enum { S = 256 };

// Max |got - want| over n values (prints it with the worst index).
static double max_abs_diff(const char *what, const float *got, const float *want, int64_t n) {
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (e > worst || isnan(e)) worst = e, at = i;
    }
    printf("  %-28s max abs diff %.3g (at %lld: %.9g vs %.9g)\n", what, worst, (long long)at,
           got[at], want[at]);
    return worst;
}

// Preprocesses the image of one fixture case and compares with its input.tensor.
static void check_fixture_image(const char *rel) {
    s2_tensorfile *f = NULL;
    REQUIRE(s2_tensorfile_open(s2t_fx(rel), &f) == 0);
    const s2_tf_entry *rgb = s2_tensorfile_find(f, "input.rgb_u8");
    const s2_tf_entry *want = s2_tensorfile_find(f, "input.tensor");
    REQUIRE(rgb && want && rgb->t.dtype == S2_U8 && rgb->t.ndim == 3 && rgb->t.shape[2] == 3);
    REQUIRE(want->t.shape[2] == S && want->t.shape[3] == S);
    float *out = malloc(3 * S * S * sizeof(float));
    REQUIRE(s2_preprocess_image(out, rgb->t.data, (int)rgb->t.shape[1], (int)rgb->t.shape[0], S) == 0);
    CHECK(max_abs_diff(rel, out, want->t.data, 3 * S * S) <= 1e-5);
    free(out);
    s2_tensorfile_free(f);
}

TEST(image_fixture_inputs) {
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return;
    }
    check_fixture_image("micro/image/truck/image.safetensors");
    check_fixture_image("micro/image/groceries/image.safetensors");
}

// Full-size originals: large antialiasing factors (7x for the truck).
TEST(image_full_size_originals) {
    if (!s2t_data()) { s2t_skip("sample data missing"); return; }
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return;
    }
    s2_tensorfile *f = NULL;
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/image/preprocess_full.safetensors"), &f) == 0);
    const char *names[2] = {"truck", "groceries"};
    for (int i = 0; i < 2; i++) {
        char path[64], key[64];
        snprintf(path, sizeof path, "images/%s.jpg", names[i]);
        snprintf(key, sizeof key, "%s.input_tensor", names[i]);
        const s2_tf_entry *want = s2_tensorfile_find(f, key);
        REQUIRE(want);
        s2_image_opts o;
        s2_image_opts_default(&o);
        s2_image im = {0};
        REQUIRE(s2_image_load(s2t_dat(path), &o, &im) == 0);
        float *out = malloc(3 * S * S * sizeof(float));
        REQUIRE(s2_preprocess_image(out, im.px, im.w, im.h, S) == 0);
        CHECK(max_abs_diff(key, out, want->t.data, 3 * S * S) <= 1e-5);
        free(out);
        s2_image_free(&im);
    }
    s2_tensorfile_free(f);
}

TEST(video_frame0) {
    if (!s2t_fixtures()) {
        s2t_skip("fixtures missing");
        return;
    }
    s2_tensorfile *f = NULL;
    REQUIRE(s2_tensorfile_open(s2t_fx("micro/video/inputs.safetensors"), &f) == 0);
    const s2_tf_entry *frames = s2_tensorfile_find(f, "frames.resized_u8");
    const s2_tf_entry *want = s2_tensorfile_find(f, "frame0.input_tensor");
    REQUIRE(frames && want && frames->t.dtype == S2_U8 && frames->t.shape[1] == S);
    float *out = malloc(3 * S * S * sizeof(float));
    REQUIRE(s2_preprocess_video_frame(out, frames->t.data, S) == 0);
    CHECK(max_abs_diff("frame0.input_tensor", out, want->t.data, 3 * S * S) <= 1e-6);
    free(out);
    s2_tensorfile_free(f);
}

TEST(bad_arguments) {
    float out[3];
    uint8_t px[3] = {0};
    CHECK(s2_preprocess_image(out, px, 0, 1, 1) < 0);
    CHECK(s2_preprocess_image(out, NULL, 1, 1, 1) < 0);
    CHECK(s2_preprocess_image(out, px, 1, 1, -4) < 0);
    CHECK(s2_preprocess_video_frame(NULL, px, 1) < 0);
    CHECK(s2_preprocess_video_frame(out, px, 0) < 0);
    /* a 1x1 image is valid: constant output per channel */
    uint8_t one[3] = {255, 0, 128};
    REQUIRE(s2_preprocess_image(out, one, 1, 1, 1) == 0);
    CHECK(out[0] == (1.0f - 0.485f) / 0.229f);
    CHECK(out[1] == (0.0f - 0.456f) / 0.224f);
    CHECK(out[2] == (128.0f / 255.0f - 0.406f) / 0.225f);
}
