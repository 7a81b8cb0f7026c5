-- hooks.lua — the hook names fit / evaluate / predict call, in Keras's spelling.
-- Callback gives each a no-op, CallbackList forwards each, LambdaCallback accepts each.
return {
  "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
  "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
  "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
  "on_predict_batch_begin", "on_predict_batch_end",
}
