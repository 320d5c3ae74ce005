/* `sam2c report`: turns the JSON of `sam2c eval` (and the run.json of the command that made
 * the masks) into one self-contained HTML page for readers who do not know SAM 2. */
#include "cli/cli.h"
#include "core/s2.h"
#include "report/report.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_report(int argc, char **argv);

/* --help text. */
static void report_usage(FILE *f) {
    fprintf(f,
            "usage: sam2c report EVAL.json -o report.html [--run run.json] [--gt G --pred P]\n"
            "                    [--images DIR] [--worst N] [--title TEXT]\n"
            "Writes one self-contained HTML page (no external files): the headline numbers with\n"
            "what they mean, a histogram of the scores, the worst cases with overlays, speed,\n"
            "model and settings. EVAL.json comes from `sam2c eval ... --json`.\n"
            "options:\n"
            "  -o, --out FILE   the HTML file to write (atomically)\n"
            "  --run FILE       run.json of the command that produced the masks (default:\n"
            "                   run.json in the prediction folder when present)\n"
            "  --gt G --pred P  mask folders (or COCO files) for the overlays (default: the\n"
            "                   inputs recorded in EVAL.json)\n"
            "  --images DIR     original images (<name>.jpg/.png) or video frames\n"
            "                   (<video>/<frame>.jpg) drawn under the overlays\n"
            "  --worst N        worst cases shown (default 6, at most 50)\n"
            "  --title TEXT     page title\n");
}

/* Entry point: argv[0] = "report". */
int cli_report(int argc, char **argv) {
    s2_report_opts o;
    s2_report_opts_default(&o);
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { report_usage(stdout); return 0; }
        if (a[0] != '-' || !a[1]) {
            if (o.eval_json) return cli_fail("report", "more than one evaluation JSON given ('%s')", a);
            o.eval_json = a;
            continue;
        }
        if (!v) return cli_fail("report", "option '%s' needs a value (see --help)", a);
        if (!strcmp(a, "-o") || !strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--run")) o.run_json = v;
        else if (!strcmp(a, "--gt")) o.gt = v;
        else if (!strcmp(a, "--pred")) o.pred = v;
        else if (!strcmp(a, "--images")) o.images = v;
        else if (!strcmp(a, "--title")) o.title = v;
        else if (!strcmp(a, "--worst")) {
            long n;
            if (!cli_parse_int(v, &n) || n < 0 || n > 50) return cli_fail("report", "bad --worst '%s' (0..50)", v);
            o.worst = (int)n;
        } else return cli_fail("report", "unknown option '%s' (see --help)", a);
        i++;
    }
    if (!o.eval_json) return cli_fail("report", "no evaluation JSON given (sam2c report EVAL.json -o report.html)");
    if (!out) return cli_fail("report", "no output file given (-o report.html)");
    if ((o.gt == NULL) != (o.pred == NULL)) return cli_fail("report", "--gt and --pred go together");
    char *html = NULL;
    size_t len = 0;
    if (s2_report_html(&o, &html, &len) < 0) return cli_fail_lib("report");
    int rc = s2_write_file_atomic(out, html, len);
    free(html);
    if (rc < 0) return cli_fail_lib("report");
    fprintf(stderr, "sam2c report: written to %s (%.1f KB)\n", out, len / 1024.0);
    return 0;
}
