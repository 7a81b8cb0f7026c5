-- layers_without_model_spec.lua — the three training loops of the reference
-- notes (examples/layers_without_model.lua) run, print a loss per epoch and
-- that loss falls for each of them. Run with a few epochs to stay fast.
local run_klua = require("helpers").run_klua

describe("examples/layers_without_model.lua", function()
  it("trains a Dense, a Conv2D and an LSTM layer by hand, each loss falling", function()
    local out = run_klua("examples/layers_without_model.lua 6")
    local sections = {}
    for name, body in out:gmatch("== ([^\n]+)\n(.-)Prediction:") do
      local losses = {}
      for v in body:gmatch("Loss: (%S+)") do losses[#losses + 1] = tonumber(v) end
      sections[#sections + 1] = { name = name, losses = losses }
    end
    assert.are.equal(3, #sections, out)
    for _, s in ipairs(sections) do
      assert.are.equal(6, #s.losses, s.name)
      assert.is_true(s.losses[6] < s.losses[1], s.name .. ": the loss did not fall\n" .. out)
    end
  end)
end)
