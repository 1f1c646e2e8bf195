-- Headless Neovim with editor-client/nvim set up as docs/PROTOCOL.md says (see
-- tests/e2e/test_neovim.py, which sets these variables and checks the JSON this writes):
--   CODESIEVE_E2E_PLUGIN  editor-client/nvim;  CODESIEVE_E2E_PYTHON  a Python with codesieve
--   CODESIEVE_E2E_FILE    a file of the workspace (a .git folder marks its root)
--   CODESIEVE_E2E_LINE    a 1-based line inside a function of that file
--   CODESIEVE_E2E_MODEL   model folder; CODESIEVE_E2E_INDEX  where indexes go
--   CODESIEVE_E2E_TEST_QUERY  the text of a test function (searched with :CodeSieveFind and :CodeSieveFind!)
--   CODESIEVE_E2E_OUT     the JSON file to write
local env = vim.env
local report = { messages = {} }

local function finish()
  local file = assert(io.open(env.CODESIEVE_E2E_OUT, "w"))
  file:write(vim.json.encode(report))
  file:close()
  vim.cmd("qall!")
end

-- What the user would see: every vim.notify.
vim.notify = function(message, level)
  table.insert(report.messages, { message = message, level = level })
end

--- The quickfix list once it has entries (its title and items), or nil after 20 s.
local function quickfix()
  vim.wait(20000, function()
    return #vim.fn.getqflist() > 0
  end, 50)
  local list = vim.fn.getqflist({ title = 1, items = 1 })
  local items = {}
  for _, item in ipairs(list.items) do
    table.insert(items, { file = vim.api.nvim_buf_get_name(item.bufnr), lnum = item.lnum, text = item.text })
  end
  return { title = list.title, items = items, window = vim.bo.buftype }
end

local function run()
  vim.opt.runtimepath:prepend(env.CODESIEVE_E2E_PLUGIN)
  require("codesieve").setup({
    python = env.CODESIEVE_E2E_PYTHON,
    settings = { model = env.CODESIEVE_E2E_MODEL, indexDir = env.CODESIEVE_E2E_INDEX, threads = 1 },
  })
  vim.cmd.edit(vim.fn.fnameescape(env.CODESIEVE_E2E_FILE))
  local bufnr = vim.api.nvim_get_current_buf()
  assert(vim.wait(20000, function()
    return require("codesieve").client(bufnr) ~= nil
  end, 50), "the codesieve client did not start")
  local client = require("codesieve").client(bufnr)
  for _ = 1, 300 do -- wait for the index
    local response = client:request_sync("codeSearch/status", vim.empty_dict(), 20000, bufnr)
    report.status = response and response.result
    if report.status and report.status.state ~= "indexing" then
      break
    end
    vim.wait(200)
  end

  -- The code action, as a user picks it (the only one here, so `apply` runs it).
  vim.api.nvim_win_set_cursor(0, { tonumber(env.CODESIEVE_E2E_LINE), 4 })
  vim.lsp.buf.code_action({
    apply = true,
    filter = function(action)
      return action.title == "Find similar code"
    end,
  })
  report.similar = quickfix()

  local function find(command)
    vim.cmd("cclose")
    vim.fn.setqflist({}, "r", { title = "", items = {} })
    vim.cmd.wincmd("p")
    vim.cmd(command)
    return quickfix()
  end
  report.find = find("CodeSieveFind say hello to a person")
  report.find_without_tests = find("CodeSieveFind " .. env.CODESIEVE_E2E_TEST_QUERY)
  report.find_with_tests = find("CodeSieveFind! " .. env.CODESIEVE_E2E_TEST_QUERY)
  vim.cmd.edit(vim.fn.fnameescape(env.CODESIEVE_E2E_FILE))
  vim.api.nvim_win_set_cursor(0, { tonumber(env.CODESIEVE_E2E_LINE), 4 })
  report.similar_with_tests = find("CodeSieveSimilar!")
  client:stop()
end

-- After startup, as a user's session would be (filetype detection is on only from then).
vim.api.nvim_create_autocmd("VimEnter", {
  once = true,
  nested = true, -- so that editing a file runs its FileType autocommands, as typing :edit does
  callback = function()
    local ok, err = pcall(run)
    report.ok = ok
    if not ok then
      report.error = tostring(err)
    end
    finish()
  end,
})
