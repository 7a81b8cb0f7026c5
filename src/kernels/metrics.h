/* metrics.h — the per-element work behind klua.metrics (src/kernels/metrics.c):
 * confusion counts over thresholds (Precision, Recall, AUC, ...), the class
 * confusion matrix (the IoU metrics) and top-k hits.
 * The metric objects themselves live in lua/klua/metrics.lua. */
#ifndef KL_METRICS_H
#define KL_METRICS_H
#include "klua.h"

/* KL_CDEF_BEGIN */
/* Adds the (weighted) confusion counts at each threshold into tp, fp, tn, fn
 * (nthr doubles each; thresholds in any order). A prediction is positive at
 * threshold t when pred > t; a label is positive when it is not 0. y_true,
 * y_pred and weights (NULL: all 1) hold the same number of elements; rows run
 * along y_pred's last axis. top_k > 0 keeps the k largest predictions of each
 * row (ties: the lower index first) and treats the rest as -1e10, as Keras's
 * _filter_top_k does; class_id >= 0 then keeps only that column. multi_label
 * (y_pred of rank 2, C labels): tp..fn hold nthr * C doubles, row-major
 * (threshold, label), and each label is counted on its own (Keras's AUC with
 * multi_label=True). */
int kl_metric_confusion(kl_tensor *y_true, kl_tensor *y_pred, kl_tensor *weights, int nthr,
                        const double *thresholds, int top_k, int class_id, int multi_label,
                        double *tp, double *fp, double *tn, double *fn);
/* Adds weights[i] (NULL: 1) into cm[label * n + prediction] (n * n doubles)
 * for each pair whose two class ids, truncated to integers, lie in [0, n) and
 * whose label is not ignore_class (when has_ignore_class). Other pairs are
 * left out, as Keras's IoU metrics do. */
int kl_metric_confusion_matrix(kl_tensor *labels, kl_tensor *predictions, kl_tensor *weights, int n,
                               int has_ignore_class, double ignore_class, double *cm);
/* 1 where the 0-based class index targets[r] is among the k largest entries of
 * row r of predictions (entries tied with the k-th count as in), else 0. */
kl_tensor *kl_metric_in_top_k(kl_tensor *targets, kl_tensor *predictions, int k);
/* KL_CDEF_END */

#endif
