-- Headless Neovim with editor-client/nvim given Pythons that cannot run the server (see
-- tests/e2e/test_neovim.py, which sets these variables and checks the JSON this writes):
--   CODESIEVE_E2E_PLUGIN   editor-client/nvim
--   CODESIEVE_E2E_PYTHONS  Pythons without codesieve, separated by newlines: each is set up in turn
--   CODESIEVE_E2E_FILES    as many files to open, one per Python, separated by newlines
--   CODESIEVE_E2E_OUT      the JSON file to write: what vim.notify said, and the clients that started
local env = vim.env
local report = { messages = {}, clients = {} }

vim.notify = function(message, level)
  table.insert(report.messages, { message = message, level = level })
end

local function run()
  vim.opt.runtimepath:prepend(env.CODESIEVE_E2E_PLUGIN)
  local files = vim.split(env.CODESIEVE_E2E_FILES, "\n")
  for index, python in ipairs(vim.split(env.CODESIEVE_E2E_PYTHONS, "\n")) do
    require("codesieve").setup({ python = python })
    vim.cmd.edit(vim.fn.fnameescape(files[index]))
    assert(vim.wait(20000, function()
      return #report.messages >= index
    end, 50), "no message for " .. python)
  end
  vim.wait(500) -- a client that started anyway would be listed by now
  for _, client in ipairs(vim.lsp.get_clients({ name = "codesieve" })) do
    table.insert(report.clients, client.name)
  end
end

vim.api.nvim_create_autocmd("VimEnter", {
  once = true,
  nested = true,
  callback = function()
    local ok, err = pcall(run)
    report.ok = ok
    report.error = not ok and tostring(err) or nil
    local file = assert(io.open(env.CODESIEVE_E2E_OUT, "w"))
    file:write(vim.json.encode(report))
    file:close()
    vim.cmd("qall!")
  end,
})
