-- Headless Neovim drives `codesieve serve` the way a user's config would (see
-- tests/e2e/test_neovim.py, which sets these variables and checks the JSON this writes):
--   CODESIEVE_E2E_PYTHON  the Python that has codesieve installed
--   CODESIEVE_E2E_ROOT    the workspace folder; CODESIEVE_E2E_FILE a file in it to open
--   CODESIEVE_E2E_LINE    a 0-based line inside a function of that file
--   CODESIEVE_E2E_MODEL   model folder; CODESIEVE_E2E_INDEX  where indexes go
--   CODESIEVE_E2E_OUT     the JSON file to write
local env = vim.env
local report = {}

local function finish()
  local file = assert(io.open(env.CODESIEVE_E2E_OUT, "w"))
  file:write(vim.json.encode(report))
  file:close()
  vim.cmd("qall!")
end

local function request(client, bufnr, method, params)
  local response, err = client:request_sync(method, params, 20000, bufnr)
  if response == nil then
    error(method .. ": no response (" .. tostring(err) .. ")")
  end
  if response.err ~= nil then
    error(method .. ": " .. vim.inspect(response.err))
  end
  return response.result
end

local ok, err = pcall(function()
  vim.cmd.edit(vim.fn.fnameescape(env.CODESIEVE_E2E_FILE))
  local bufnr = vim.api.nvim_get_current_buf()
  local client_id = vim.lsp.start({
    name = "codesieve",
    cmd = { env.CODESIEVE_E2E_PYTHON, "-m", "codesieve.server.cli", "serve" },
    root_dir = env.CODESIEVE_E2E_ROOT,
    init_options = { model = env.CODESIEVE_E2E_MODEL, indexDir = env.CODESIEVE_E2E_INDEX, threads = 1 },
  }, { bufnr = bufnr })
  local client = assert(vim.lsp.get_client_by_id(assert(client_id, "vim.lsp.start failed")))

  -- Wait for the index: poll codeSearch/status.
  for _ = 1, 300 do
    report.status = request(client, bufnr, "codeSearch/status", vim.empty_dict())
    if report.status.state ~= "indexing" then
      break
    end
    vim.wait(200)
  end
  report.positionEncoding = client.offset_encoding

  report.find = request(client, bufnr, "codeSearch/find", { query = "say hello to a person", limit = 5 })

  local line = tonumber(env.CODESIEVE_E2E_LINE)
  local position = { line = line, character = 4 }
  report.actions = request(client, bufnr, "textDocument/codeAction", {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = { start = position, ["end"] = position },
    context = { diagnostics = {} },
  })
  local action = report.actions and report.actions[1]
  if action ~= nil then
    local command = action.command
    report.similar = request(client, bufnr, "workspace/executeCommand", {
      command = command.command,
      arguments = command.arguments,
    })
  end
  client:stop()
end)

report.ok = ok
if not ok then
  report.error = tostring(err)
end
finish()
