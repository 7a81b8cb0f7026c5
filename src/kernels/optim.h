/* optim.h — fused optimizer updates (src/kernels/optim.c): one call updates a
 * variable in place from its gradient and its slot tensors, following the
 * update rules of Keras 3's optimizers (keras/src/optimizers/<name>.py).
 *
 *   kl_optim_step s = {.lr = 1e-3, .grad_scale = 1, .step = it + 1};
 *   kl_adam_update(w, dw, m, v, NULL, &s, 0.9, 0.999, 1e-7);
 *
 * Every update first prepares the gradient g = clip(grad * grad_scale,
 * -clipvalue, clipvalue) (clipnorm / global_clipnorm arrive as grad_scale),
 * then applies decoupled weight decay w -= w * decay (Keras applies
 * `variable - variable * weight_decay * lr` before the update step), then the
 * optimizer's own rule. The variable and the slots must be contiguous and
 * shaped like the variable; the gradient may be strided. Functions return 0,
 * or -1 with a message naming the optimizer and the shapes.
 */
#ifndef KL_OPTIM_H
#define KL_OPTIM_H
#include "klua.h"

/* KL_CDEF_BEGIN */
/* Per-step arguments shared by every update of one apply_gradients call. */
typedef struct kl_optim_step {
  double lr;          /* learning rate of this step */
  double grad_scale;  /* gradient multiplier (clipnorm, global_clipnorm); 1 = none */
  double clipvalue;   /* > 0: clip the gradient to [-clipvalue, clipvalue] */
  double decay;       /* weight_decay * lr, applied before the update; 0 = none */
  int64_t step;       /* 1-based step: iterations + 1 */
} kl_optim_step;

/* velocity = momentum * velocity - lr * g; w += velocity
 * (nesterov: w += momentum * velocity - lr * g). m may be NULL when momentum is 0. */
int kl_sgd_update(kl_tensor *var, kl_tensor *grad, kl_tensor *m, const kl_optim_step *s,
                  double momentum, int nesterov);
/* Adam with the bias correction folded into the learning rate; vhat (AMSGrad) may be NULL. */
int kl_adam_update(kl_tensor *var, kl_tensor *grad, kl_tensor *m, kl_tensor *v, kl_tensor *vhat,
                   const kl_optim_step *s, double beta1, double beta2, double epsilon);
/* RMSprop; mom is NULL when momentum is 0, mg (average gradient) is NULL unless centered. */
int kl_rmsprop_update(kl_tensor *var, kl_tensor *grad, kl_tensor *velocity, kl_tensor *mom, kl_tensor *mg,
                      const kl_optim_step *s, double rho, double momentum, double epsilon);
int kl_adagrad_update(kl_tensor *var, kl_tensor *grad, kl_tensor *acc, const kl_optim_step *s, double epsilon);
int kl_adadelta_update(kl_tensor *var, kl_tensor *grad, kl_tensor *acc_grad, kl_tensor *acc_delta,
                       const kl_optim_step *s, double rho, double epsilon);
int kl_adamax_update(kl_tensor *var, kl_tensor *grad, kl_tensor *m, kl_tensor *u, const kl_optim_step *s,
                     double beta1, double beta2, double epsilon);
/* Nadam: u_product is the momentum-cache product including this step's factor. */
int kl_nadam_update(kl_tensor *var, kl_tensor *grad, kl_tensor *m, kl_tensor *v, const kl_optim_step *s,
                    double beta1, double beta2, double epsilon, double u_product);
int kl_lion_update(kl_tensor *var, kl_tensor *grad, kl_tensor *m, const kl_optim_step *s,
                   double beta1, double beta2);
/* FTRL-proximal; accum starts at initial_accumulator_value, linear at 0. */
int kl_ftrl_update(kl_tensor *var, kl_tensor *grad, kl_tensor *accum, kl_tensor *linear, const kl_optim_step *s,
                   double lr_power, double l1, double l2, double l2_shrinkage, double beta);
/* Lamb: the Adam direction scaled by the trust ratio ||w|| / ||update|| (whole tensor). */
int kl_lamb_update(kl_tensor *var, kl_tensor *grad, kl_tensor *m, kl_tensor *v, const kl_optim_step *s,
                   double beta1, double beta2, double epsilon);
/* Adafactor. For a variable of rank >= 2, r has the shape without the last
 * axis, c the shape without the second-to-last one (factored second moments);
 * for rank < 2 they are unused and may be NULL. v is shaped like the variable. */
int kl_adafactor_update(kl_tensor *var, kl_tensor *grad, kl_tensor *r, kl_tensor *c, kl_tensor *v,
                        const kl_optim_step *s, double beta_2_decay, double epsilon_1, double epsilon_2,
                        double clip_threshold);
/* Muon's momentum half: weight decay on var, m = momentum * m + g, and into
 * out (contiguous, shaped like var) the matrix to orthogonalize: g + momentum
 * * m with nesterov, else m. The Newton-Schulz part is klua ops. */
int kl_muon_momentum(kl_tensor *var, kl_tensor *grad, kl_tensor *m, kl_tensor *out, const kl_optim_step *s,
                     double momentum, int nesterov);

/* avg = momentum * avg + (1 - momentum) * var (the optimizer's EMA of a weight). */
int kl_optim_ema(kl_tensor *avg, kl_tensor *var, double momentum);
/* acc = (grad * grad_scale + acc) / divisor: gradient accumulation (divisor 1
 * between updates, the number of steps on the update step, when acc then
 * holds the mean gradient). */
int kl_optim_accumulate(kl_tensor *acc, kl_tensor *grad, double grad_scale, double divisor);

/* Sum of squares in double, summed in a fixed order whatever the thread
 * count, so clipping by norm is reproducible bit for bit. */
double kl_optim_sumsq(kl_tensor *t);
/* sqrt of the summed squares of n tensors (NULL entries skipped). */
double kl_global_norm(int n, kl_tensor **ts);
/* KL_CDEF_END */

#endif
