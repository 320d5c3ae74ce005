/* Training curves of a fine-tuning run as a PNG: left panel train and validation loss
 * per epoch, right panel validation mIoU per epoch (epoch 0 = before training). Drawn
 * on the report's raster canvas (report/plot.h). */
#ifndef S2_TRAIN_CURVES_H
#define S2_TRAIN_CURVES_H

#include "train/finetune.h"
#include "report/plot.h"

/* Draws the curves of hist[0..n) (NaN values are skipped) on a new canvas (free with
 * s2_canvas_free). */
int s2_plot_train_curves(const s2_epoch_stats *hist, int n, const char *title, s2_canvas *out);
/* Draws and writes them to a PNG file. */
int s2_write_train_curves(const s2_epoch_stats *hist, int n, const char *title, const char *path);

#endif
