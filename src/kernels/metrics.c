/* metrics.c — confusion counts (per threshold, optionally per label), the
 * class confusion matrix of the IoU metrics, and top-k hits for klua.metrics.
 * Counts are accumulated in double; each element costs O(log thresholds). */
#include "core.h"
#include "kernels/metrics.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double NEG_INF_SCORE = -1e10; /* Keras's metrics_utils.NEG_INF */

static int desc_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x < y) - (x > y);
}

/* Number of sorted thresholds strictly below p: p is positive at those. */
static int count_below(const double *sorted, int n, double p) {
  if (!(p == p)) return 0;
  int lo = 0, hi = n;
  while (lo < hi) { int mid = (lo + hi) / 2; if (sorted[mid] < p) lo = mid + 1; else hi = mid; }
  return lo;
}

/* Row r's predictions with everything outside the top k set to NEG_INF_SCORE. */
static void filter_top_k(const float *row, int64_t c, int k, float *out, float *scratch) {
  memcpy(scratch, row, sizeof(float) * c);
  qsort(scratch, c, sizeof(float), desc_float);
  float kth = scratch[k - 1];
  int64_t greater = 0;
  for (int64_t j = 0; j < c; j++) greater += row[j] > kth;
  int64_t ties_left = k - greater;
  for (int64_t j = 0; j < c; j++) {
    if (row[j] > kth) out[j] = row[j];
    else if (row[j] == kth && ties_left > 0) { out[j] = row[j]; ties_left--; }
    else out[j] = (float)NEG_INF_SCORE;
  }
}

int kl_metric_confusion(kl_tensor *y_true, kl_tensor *y_pred, kl_tensor *weights, int nthr,
                        const double *thresholds, int top_k, int class_id, int multi_label,
                        double *tp, double *fp, double *tn, double *fn) {
  const char *name = "confusion metrics";
  if (!y_true || !y_pred || nthr < 1 || !thresholds) return kl_failn("%s: labels, predictions and thresholds are required", name);
  if (y_true->count != y_pred->count)
    return kl_failn("%s: y_true %s and y_pred %s must have the same number of elements", name, KL_SHAPE(y_true), KL_SHAPE(y_pred));
  if (weights && weights->count != y_pred->count)
    return kl_failn("%s: sample_weight %s does not match y_pred %s", name, KL_SHAPE(weights), KL_SHAPE(y_pred));
  int64_t c = y_pred->nd ? y_pred->dims[y_pred->nd - 1] : 1;
  if (class_id >= 0 && (y_pred->nd < 2 || class_id >= c))
    return kl_failn("%s: class_id %d needs y_pred of shape (num_samples, num_classes) with more than %d classes, got %s",
                    name, class_id, class_id, KL_SHAPE(y_pred));
  if (multi_label && y_pred->nd != 2)
    return kl_failn("%s: multi_label needs y_pred of rank 2 (num_samples, num_labels), got %s", name, KL_SHAPE(y_pred));
  if (top_k > c) top_k = (int)c;
  int64_t ncol = multi_label ? c : 1; /* one column of counts per label, or one for all */

  int *order = malloc(sizeof(int) * nthr);
  double *sorted = malloc(sizeof(double) * nthr);
  double *pos = calloc((size_t)(nthr + 1) * ncol, sizeof(double)), *neg = calloc((size_t)(nthr + 1) * ncol, sizeof(double));
  float *row = top_k > 0 ? malloc(sizeof(float) * 2 * (c ? c : 1)) : NULL;
  kl_tensor *t = kl_tensor_contiguous(y_true), *p = kl_tensor_contiguous(y_pred), *w = weights ? kl_tensor_contiguous(weights) : NULL;
  int rc = 0;
  if (!order || !sorted || !pos || !neg || (top_k > 0 && !row) || !t || !p || (weights && !w)) rc = kl_failn("%s: out of memory", name);
  if (!rc) {
    for (int i = 0; i < nthr; i++) { /* insertion sort of the (few) thresholds' order */
      int j = i;
      while (j > 0 && thresholds[order[j - 1]] > thresholds[i]) { order[j] = order[j - 1]; j--; }
      order[j] = i;
    }
    for (int i = 0; i < nthr; i++) sorted[i] = thresholds[order[i]];
    int64_t rows = c ? p->count / c : 0;
    for (int64_t r = 0; r < rows; r++) {
      const float *pr = p->data + r * c;
      if (top_k > 0) { filter_top_k(pr, c, top_k, row, row + c); pr = row; }
      int64_t j0 = class_id >= 0 ? class_id : 0, j1 = class_id >= 0 ? class_id + 1 : c;
      for (int64_t j = j0; j < j1; j++) {
        int64_t i = r * c + j, col = multi_label ? j : 0;
        double wi = w ? w->data[i] : 1.0;
        int k = count_below(sorted, nthr, pr[j]);
        if (t->data[i] != 0) pos[k * ncol + col] += wi; else neg[k * ncol + col] += wi;
      }
    }
    /* a prediction counted at k is positive for sorted thresholds 0..k-1 */
    for (int64_t col = 0; col < ncol; col++) {
      double cum_pos = 0, cum_neg = 0, all_pos = 0, all_neg = 0;
      for (int k = 0; k <= nthr; k++) { all_pos += pos[k * ncol + col]; all_neg += neg[k * ncol + col]; }
      for (int i = nthr - 1; i >= 0; i--) {
        cum_pos += pos[(i + 1) * ncol + col];
        cum_neg += neg[(i + 1) * ncol + col];
        int64_t o = order[i] * ncol + col;
        tp[o] += cum_pos; fp[o] += cum_neg;
        fn[o] += all_pos - cum_pos; tn[o] += all_neg - cum_neg;
      }
    }
  }
  free(order); free(sorted); free(pos); free(neg); free(row);
  kl_tensor_release(t); kl_tensor_release(p); kl_tensor_release(w);
  return rc;
}

int kl_metric_confusion_matrix(kl_tensor *labels, kl_tensor *predictions, kl_tensor *weights, int n,
                               int has_ignore_class, double ignore_class, double *cm) {
  const char *name = "IoU";
  if (!labels || !predictions || !cm || n < 1) return kl_failn("%s: labels, predictions and num_classes >= 1 are required", name);
  if (labels->count != predictions->count)
    return kl_failn("%s: y_true %s and y_pred %s must have the same number of elements", name, KL_SHAPE(labels), KL_SHAPE(predictions));
  if (weights && weights->count != labels->count)
    return kl_failn("%s: sample_weight %s does not match y_true %s", name, KL_SHAPE(weights), KL_SHAPE(labels));
  kl_tensor *t = kl_tensor_contiguous(labels), *p = kl_tensor_contiguous(predictions), *w = weights ? kl_tensor_contiguous(weights) : NULL;
  int rc = 0;
  if (!t || !p || (weights && !w)) rc = kl_failn("%s: out of memory", name);
  for (int64_t i = 0; !rc && i < t->count; i++) {
    double a = trunc(t->data[i]), b = trunc(p->data[i]); /* Keras casts the ids to integers */
    if (!(a >= 0 && a < n && b >= 0 && b < n)) continue;     /* out of range (or NaN): left out */
    if (has_ignore_class && a == trunc(ignore_class)) continue;
    cm[(int64_t)a * n + (int64_t)b] += w ? w->data[i] : 1.0;
  }
  kl_tensor_release(t); kl_tensor_release(p); kl_tensor_release(w);
  return rc;
}

kl_tensor *kl_metric_in_top_k(kl_tensor *targets, kl_tensor *predictions, int k) {
  if (!targets || !predictions) return kl_fail("in_top_k: targets and predictions are required");
  if (predictions->nd < 1) return kl_fail("in_top_k: predictions must have a class axis, got %s", KL_SHAPE(predictions));
  int64_t c = predictions->dims[predictions->nd - 1], rows = c ? predictions->count / c : 0;
  if (targets->count != rows)
    return kl_fail("in_top_k: %lld targets for predictions %s (expected one per row)", (long long)targets->count, KL_SHAPE(predictions));
  if (k < 1) return kl_fail("in_top_k: k must be at least 1, got %d", k);
  kl_tensor *t = kl_tensor_contiguous(targets), *p = kl_tensor_contiguous(predictions);
  kl_tensor *out = t && p ? kl_tensor_empty(1, &rows) : NULL;
  if (out) {
    for (int64_t r = 0; r < rows; r++) {
      double y = t->data[r];
      const float *pr = p->data + r * c;
      int hit = 0;
      if (y >= 0 && y < (double)c && y == floor(y) && pr[(int64_t)y] == pr[(int64_t)y]) {
        float v = pr[(int64_t)y];
        int64_t greater = 0;
        for (int64_t j = 0; j < c; j++) greater += pr[j] > v;
        hit = greater < k;
      }
      out->data[r] = (float)hit;
    }
  }
  kl_tensor_release(t); kl_tensor_release(p);
  return out;
}
