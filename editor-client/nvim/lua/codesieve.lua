-- CodeSieve for Neovim 0.10+: starts `codesieve serve` for each project and shows what the
-- codeSearch.* commands and requests find, in the quickfix list or with vim.ui.select.
--
--   require("codesieve").setup({
--     python = "~/.venvs/codesieve/bin/python", -- or cmd = { "codesieve", "serve" }; default: found
--     settings = { rerankDepth = 10 },           -- the server's settings (docs/PROTOCOL.md)
--     picker = "quickfix",                       -- or "select" (vim.ui.select)
--   })
--
-- Commands: :CodeSieveFind [query] (asks when no query is given; :CodeSieveFind! ranks test code
-- like any other, which otherwise comes after implementation), :CodeSieveSimilar (the function at
-- the cursor; :CodeSieveSimilar! ranks test code like any other), :CodeSieveStatus. The server's "Find similar code" code action works too: Neovim
-- drops the result of workspace/executeCommand, so this module runs codeSearch.find and
-- codeSearch.findSimilar itself (vim.lsp.commands) and shows their hits. Before starting a Python it
-- checks that it can import codesieve, and says why not (vim.notify, ERROR) instead of starting it.
local M = {}

local NAME = "codesieve"

M.config = {
  cmd = nil, -- the whole command; overrides python
  python = nil, -- a Python that has codesieve installed
  settings = {}, -- initializationOptions
  picker = "quickfix", -- "quickfix" or "select"
  limit = 20,
  root_markers = { ".git", "pyproject.toml", "package.json", "go.mod", "Cargo.toml", ".hg" },
}

--- `client:method(...)` on 0.11, `client.method(...)` on 0.10.
local function call(client, method, ...)
  if vim.fn.has("nvim-0.11") == 1 then
    return client[method](client, ...)
  end
  return client[method](...)
end

--- The command that starts the server for a project at `root`.
function M.server_cmd(root)
  local config = M.config
  if config.cmd then
    return config.cmd
  end
  if config.python then
    return { vim.fn.expand(config.python), "-m", "codesieve.server.cli", "serve" }
  end
  for _, relative in ipairs({ ".venv/bin/python", "venv/bin/python" }) do
    local python = root .. "/" .. relative
    if vim.fn.executable(python) == 1 then
      return { python, "-m", "codesieve.server.cli", "serve" }
    end
  end
  if vim.fn.executable("codesieve") == 1 then
    return { "codesieve", "serve" }
  end
  return { "python3", "-m", "codesieve.server.cli", "serve" }
end

--- The running CodeSieve client of a buffer (else any running one).
function M.client(bufnr)
  local clients = vim.lsp.get_clients({ name = NAME, bufnr = bufnr or 0 })
  if #clients == 0 then
    clients = vim.lsp.get_clients({ name = NAME })
  end
  return clients[1]
end

--- A file's path for titles: relative to the client's project root when inside it.
local function display_path(client, file)
  local root = client.root_dir or (client.config and client.config.root_dir)
  if root and file:sub(1, #root + 1) == root .. "/" then
    return file:sub(#root + 2)
  end
  return vim.fn.fnamemodify(file, ":~:.")
end

local function hit_items(hits)
  local items = {}
  for _, hit in ipairs(hits) do
    local text = hit.name .. "  " .. (hit.preview or "")
    local twins = {}
    for _, twin in ipairs(hit.alsoAt or {}) do
      twins[#twins + 1] = vim.fn.fnamemodify(vim.uri_to_fname(twin.uri), ":~:.") .. ":" .. (twin.line + 1)
    end
    if #twins > 0 then
      text = text .. "  (also at " .. table.concat(twins, ", ") .. ")"
    end
    items[#items + 1] = {
      filename = vim.uri_to_fname(hit.uri),
      lnum = hit.range.start.line + 1,
      end_lnum = hit.range["end"].line + 1,
      col = 1,
      text = text,
    }
  end
  return items
end

local function open_item(item)
  vim.cmd.edit(vim.fn.fnameescape(item.filename))
  vim.api.nvim_win_set_cursor(0, { item.lnum, 0 })
end

--- Show a codeSearch result (`{hits = {...}}`) under `title`.
function M.show(result, title)
  local items = hit_items(result and result.hits or {})
  if #items == 0 then
    vim.notify("CodeSieve: no results (" .. title .. ")", vim.log.levels.INFO)
    return
  end
  if M.config.picker == "select" then
    vim.ui.select(items, {
      prompt = title,
      format_item = function(item)
        return ("%s:%d  %s"):format(vim.fn.fnamemodify(item.filename, ":~:."), item.lnum, item.text)
      end,
    }, function(item)
      if item then
        open_item(item)
      end
    end)
  else
    vim.fn.setqflist({}, " ", { title = title, items = items })
    vim.cmd("botright copen")
  end
end

local function on_result(title)
  return function(err, result)
    if err then
      vim.notify("CodeSieve: " .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    else
      M.show(result, title)
    end
  end
end

local function with_client(bufnr, work)
  local client = M.client(bufnr)
  if not client then
    vim.notify("CodeSieve: the server is not running for this buffer (see :checkhealth vim.lsp)", vim.log.levels.WARN)
    return
  end
  work(client)
end

--- Code described in words: codeSearch/find. `opts.include_tests`: rank test code like any other
--- (by default it comes after implementation of similar relevance).
function M.find(query, opts)
  local include_tests = (opts or {}).include_tests == true
  local bufnr = vim.api.nvim_get_current_buf()
  with_client(bufnr, function(client)
    local params = { query = query, limit = M.config.limit, includeTests = include_tests }
    local title = "CodeSieve: " .. query .. (include_tests and " (tests included)" or "")
    call(client, "request", "codeSearch/find", params, on_result(title), bufnr)
  end)
end

--- Code like the function at the cursor: codeSearch/findSimilar. `opts.include_tests`: rank test
--- code like any other (by default it comes after implementation of similar relevance).
function M.similar(opts)
  local include_tests = (opts or {}).include_tests == true
  local bufnr = vim.api.nvim_get_current_buf()
  with_client(bufnr, function(client)
    local cursor = vim.api.nvim_win_get_cursor(0)
    local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
    params.limit = M.config.limit
    params.includeTests = include_tests
    local title = ("CodeSieve: similar to %s:%d"):format(display_path(client, vim.api.nvim_buf_get_name(bufnr)), cursor[1])
      .. (include_tests and " (tests included)" or "")
    call(client, "request", "codeSearch/findSimilar", params, on_result(title), bufnr)
  end)
end

--- Runs a codeSearch.find / codeSearch.findSimilar command (from a code action) and shows its hits.
local function run_command(command, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not client then
    return
  end
  local title = "CodeSieve: " .. (command.title or command.command)
  local arguments = command.arguments or {}
  if command.command == "codeSearch.findSimilar" and type(arguments[1]) == "string" then
    local line = type(arguments[2]) == "table" and arguments[2].line or 0
    title = ("CodeSieve: similar to %s:%d"):format(display_path(client, vim.uri_to_fname(arguments[1])), line + 1)
  elseif command.command == "codeSearch.find" and type(arguments[1]) == "string" then
    title = "CodeSieve: " .. arguments[1]
  end
  local params = { command = command.command, arguments = command.arguments }
  call(client, "request", "workspace/executeCommand", params, on_result(title), ctx.bufnr)
end

-- Each Python's check: true (it imports codesieve.server), false (it does not: said once), or the
-- starts waiting for it. setup() forgets them, so that a Python fixed since is checked again.
local checks = {}

local SETUP_PYTHON = 'require("codesieve").setup({ python = "/path/to/bin/python" })'

--- Why `python` cannot run the server, from its check's result; nil when it can.
local function check_problem(python, result)
  if result.code == 0 then
    return nil
  end
  local lines = vim.split(vim.trim(result.stderr or ""), "\n")
  local cause = lines[#lines] ~= "" and lines[#lines] or ("exit " .. tostring(result.code))
  local install = ("Install it there from a CodeSieve checkout (%s -m pip install -e /path/to/codesieve)"):format(python)
  if cause:match("ModuleNotFoundError") or cause:match("No module named") then
    return ("CodeSieve: the codesieve package is not installed for %s (%s). %s, or give setup() one that has it: %s."):format(
      python, cause, install, SETUP_PYTHON)
  end
  return ('CodeSieve: %s -c "import codesieve.server" failed (%s). %s, or give setup() one that has it: %s.'):format(
    python, cause, install, SETUP_PYTHON)
end

--- Runs `launch` once `python` is known to import codesieve.server; else says why, at ERROR level,
--- once per Python, and starts nothing (the client alone would say only that the server quit).
local function when_python_works(python, launch)
  local state = checks[python]
  if state == true then
    return launch()
  elseif state == false then
    return
  elseif state ~= nil then
    table.insert(state, launch)
    return
  end
  checks[python] = { launch }
  local function finish(problem)
    local waiting = checks[python]
    checks[python] = problem == nil
    if problem then
      vim.notify(problem, vim.log.levels.ERROR)
    elseif type(waiting) == "table" then
      for _, waiting_launch in ipairs(waiting) do
        waiting_launch()
      end
    end
  end
  local command = { python, "-c", "import codesieve.server" }
  local ok, err = pcall(vim.system, command, { text = true, timeout = 60000 }, function(result)
    vim.schedule(function()
      finish(check_problem(python, result))
    end)
  end)
  if not ok then -- not found, or not executable
    local reason = tostring(err):match("(E%u+: .*)") or tostring(err)
    finish(("CodeSieve: Python %s could not be run (%s). Give setup() a Python that has codesieve: %s."):format(
      python, reason, SETUP_PYTHON))
  end
end

local function start(bufnr)
  if vim.bo[bufnr].buftype ~= "" or vim.api.nvim_buf_get_name(bufnr) == "" then
    return
  end
  local root = vim.fs.root(bufnr, M.config.root_markers) or vim.fn.getcwd()
  local cmd = M.server_cmd(root)
  local function launch()
    if vim.api.nvim_buf_is_valid(bufnr) then
      vim.lsp.start({ name = NAME, cmd = cmd, root_dir = root, init_options = M.config.settings }, { bufnr = bufnr })
    end
  end
  if M.config.cmd or cmd[1] == "codesieve" then -- a whole command: nothing to check
    launch()
  else
    when_python_works(cmd[1], launch)
  end
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", M.config, opts or {})
  checks = {}
  vim.lsp.commands["codeSearch.find"] = run_command
  vim.lsp.commands["codeSearch.findSimilar"] = run_command
  local group = vim.api.nvim_create_augroup("codesieve", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    callback = function(event)
      start(event.buf)
    end,
  })
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do -- buffers opened before setup
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.bo[bufnr].filetype ~= "" then
      start(bufnr)
    end
  end
  vim.api.nvim_create_user_command("CodeSieveFind", function(command)
    local find_opts = { include_tests = command.bang }
    if command.args ~= "" then
      M.find(command.args, find_opts)
    else
      local prompt = command.bang and "CodeSieve: find code (tests included): " or "CodeSieve: find code: "
      vim.ui.input({ prompt = prompt }, function(query)
        if query and query ~= "" then
          M.find(query, find_opts)
        end
      end)
    end
  end, { nargs = "*", bang = true, desc = "CodeSieve: find code by describing it (!: tests ranked like any code)" })
  vim.api.nvim_create_user_command("CodeSieveSimilar", function(command)
    M.similar({ include_tests = command.bang })
  end, { bang = true, desc = "CodeSieve: code like the function at the cursor (!: tests ranked like any code)" })
  vim.api.nvim_create_user_command("CodeSieveStatus", function()
    with_client(0, function(client)
      call(client, "request", "codeSearch/status", vim.empty_dict(), function(err, status)
        if err then
          vim.notify("CodeSieve: " .. err.message, vim.log.levels.ERROR)
          return
        end
        local text = ("CodeSieve: %s, %d files, %d chunks, model %s"):format(
          status.state, status.files or 0, status.chunks or 0, tostring(status.model))
        if status.lastError then
          text = text .. "\n" .. status.lastError
        end
        vim.notify(text, vim.log.levels.INFO)
      end, 0)
    end)
  end, { desc = "CodeSieve: index status" })
end

return M
