-- code_llama_ls: Code Llama inline completions and "explain selection" from the code-llama-ls server.
--
-- `require('code_llama_ls').setup(opts)` stores the options and enables the
-- LSP config; the server starts with the first file buffer. The functions
-- below back the user commands and <Plug> maps of plugin/code_llama_ls.lua.
-- See :help code_llama_ls.

local config = require('code_llama_ls.config')
local util = require('code_llama_ls.util')

local M = {}

local api = vim.api

local function set_highlights()
  api.nvim_set_hl(0, 'CodeLlamaGhost', { link = 'Comment', default = true })
  api.nvim_set_hl(0, 'CodeLlamaGhostHint', { link = 'NonText', default = true })
end

---@param client_id integer
---@return vim.lsp.Client|nil
local function our_client(client_id)
  local client = client_id and vim.lsp.get_client_by_id(client_id)
  if client and client.name == config.name then
    return client
  end
  return nil
end

---@param bufnr integer
---@param client vim.lsp.Client
local function attach_completion(bufnr, client)
  if not (client.server_capabilities or {}).inlineCompletionProvider then
    return
  end
  local native = config.use_native_completion()
  if native then
    require('code_llama_ls.inline').attach(
      bufnr,
      config.completions_enabled(vim.bo[bufnr].filetype)
    )
  end
  -- On 0.12 only for the alternatives next/prev ask for (see inline.lua).
  require('code_llama_ls.ghost').attach(bufnr, client.id, native)
end

local function create_autocmds()
  local group = api.nvim_create_augroup('code_llama_ls', { clear = true })
  api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(args)
      local client = our_client(args.data and args.data.client_id)
      if client then
        require('code_llama_ls.lsp').add_workspace_folder(args.buf, client)
        attach_completion(args.buf, client)
      end
    end,
  })
  api.nvim_create_autocmd('LspDetach', {
    group = group,
    callback = function(args)
      if not our_client(args.data and args.data.client_id) then
        return
      end
      if config.use_native_completion() then
        require('code_llama_ls.inline').detach(args.buf)
      end
      require('code_llama_ls.ghost').detach(args.buf)
    end,
  })
  api.nvim_create_autocmd('TextYankPost', {
    group = group,
    callback = function(args)
      require('code_llama_ls.yank').on_yank(args.buf)
    end,
  })
  api.nvim_create_autocmd('LspProgress', {
    group = group,
    callback = function(args)
      local data = args.data or {}
      local params = data.params
      if not params or not our_client(data.client_id) then
        return
      end
      local value = type(params.value) == 'table' and params.value or {}
      require('code_llama_ls.status').on_progress(data.client_id, value, value.title)
      require('code_llama_ls.explain').on_progress(data.client_id, params)
    end,
  })
  api.nvim_create_autocmd('ColorScheme', { group = group, callback = set_highlights })
end

--- Store the options (merged over the defaults) and enable the LSP config.
---@param opts? code_llama_ls.Options
function M.setup(opts)
  config.set(opts)
  set_highlights()
  create_autocmds()
  require('code_llama_ls.lsp').enable()
end

--- Accept the completion shown in the current buffer, or only its next word or line
--- (`part`). Returns false when none is shown, so an `expr` mapping can fall back to its
--- key.
---@param part? 'word'|'line'
---@return boolean
function M.accept(part)
  if config.use_native_completion() then
    return require('code_llama_ls.inline').accept(part)
  end
  return require('code_llama_ls.ghost').accept(nil, part)
end

--- Show the next candidate of the current completion; when only one is at hand, ask the
--- server for its alternatives (an Invoked request) and show the second.
function M.next()
  if config.use_native_completion() then
    require('code_llama_ls.inline').select(1)
  else
    require('code_llama_ls.ghost').select(1)
  end
end

--- Show the previous candidate of the current completion.
function M.prev()
  if config.use_native_completion() then
    require('code_llama_ls.inline').select(-1)
  else
    require('code_llama_ls.ghost').select(-1)
  end
end

--- Whether inline completions are on (the toggle, else the `completions.enable` option).
---@return boolean
function M.enabled()
  if config.toggled ~= nil then
    return config.toggled
  end
  return config.get().completions.enable ~= false
end

--- Switch inline completions on or off everywhere (no argument: the other way round).
---@param on? boolean
function M.toggle(on)
  if on == nil then
    on = not M.enabled()
  end
  config.toggled = on
  if config.use_native_completion() then
    local inline = require('code_llama_ls.inline')
    for _, client in ipairs(util.clients()) do
      for bufnr in pairs(client.attached_buffers or {}) do
        inline.set(bufnr, config.completions_enabled(vim.bo[bufnr].filetype))
      end
    end
  end
  require('code_llama_ls.ghost').refresh()
  util.notify('inline completions ' .. (on and 'on' or 'off'))
end

--- Restart the server (:CodeLlamaRestart).
function M.restart()
  if not config.is_setup() then
    util.notify('call require("code_llama_ls").setup() first', vim.log.levels.WARN)
    return
  end
  require('code_llama_ls.lsp').restart(function()
    util.notify('server restarted')
  end)
end

--- Print what each running server reports (:CodeLlamaStatus).
function M.print_status()
  local status = require('code_llama_ls.status')
  local clients = util.clients()
  if #clients == 0 then
    util.notify('no server is running (open a file to start one)')
    return
  end
  local lines = {}
  for _, client in ipairs(clients) do
    local current = status.request(client, 1000) or status.get(client.id)
    lines[#lines + 1] = ('[%d] %s'):format(client.id, status.describe(current))
  end
  util.notify(table.concat(lines, '\n'))
end

--- A statusline component: "Code Llama: ready" ('' when no server serves the buffer).
---@return string
function M.statusline()
  return require('code_llama_ls.status').statusline()
end

return M
