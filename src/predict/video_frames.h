/* Frame files of a video folder, ordered as the official load_video_frames orders them:
 * the .jpg / .jpeg / .JPG / .JPEG files sorted by the integer of their name. */
#ifndef S2_PREDICT_VIDEO_FRAMES_H
#define S2_PREDICT_VIDEO_FRAMES_H

/* A frame file and the integer its name encodes. */
typedef struct s2_frame_file {
    long long key;
    char *name;     /* file name inside the folder (owned) */
} s2_frame_file;

/* ref: sam2/utils/misc.py load_video_frames (listing and sort). A name that is not an
 * integer is an error (Python's int() raises), as is a folder without frames. Caller
 * frees with s2_frame_files_free. */
int s2_list_frame_files(const char *dir, s2_frame_file **out, int *n_out);
void s2_frame_files_free(s2_frame_file *list, int n);

#endif
