/* Minimal use of the sam2c library: one click on an image, the best of three masks
 * written as a 0/255 PGM. Usage: segment_point MODEL IMAGE X Y OUT.pgm */
#include <sam2c.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s MODEL IMAGE X Y OUT.pgm\n", argv[0]);
        return 2;
    }
    sam2c_model *model = NULL;
    sam2c_image_session *sess = NULL;
    if (sam2c_model_load(argv[1], NULL, &model) < 0 ||
        sam2c_image_session_create(model, &sess) < 0 ||
        sam2c_image_set_file(sess, argv[2], 1) < 0) {
        fprintf(stderr, "error: %s\n", sam2c_last_error());
        sam2c_image_session_free(sess);
        sam2c_model_free(model);
        return 1;
    }
    float point[2] = {(float)atof(argv[3]), (float)atof(argv[4])};
    int32_t label[1] = {1};
    sam2c_prompt p = {.n_points = 1, .points = point, .labels = label, .multimask = 1};
    sam2c_masks r;
    int rc = sam2c_image_predict(sess, &p, &r);
    if (rc == 0) {
        int best = 0;
        for (int i = 1; i < r.n_masks; i++)
            if (r.iou[i] > r.iou[best]) best = i;
        FILE *f = fopen(argv[5], "wb");
        if (f) {
            fprintf(f, "P5\n%d %d\n255\n", r.width, r.height);
            const float *m = r.masks + (size_t)best * r.width * r.height;
            for (long i = 0; i < (long)r.width * r.height; i++) fputc(m[i] > 0.5f ? 255 : 0, f);
            fclose(f);
            printf("mask %d (predicted IoU %.3f) written to %s\n", best, r.iou[best], argv[5]);
        } else rc = -1;
    } else fprintf(stderr, "error: %s\n", sam2c_last_error());
    sam2c_image_session_free(sess);
    sam2c_model_free(model);
    return rc == 0 ? 0 : 1;
}
