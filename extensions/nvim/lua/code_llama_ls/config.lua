-- code_llama_ls.config: the plugin's options, their defaults and the runtime switches.
--
-- `setup()` merges the user's options over `defaults` once; every other
-- module reads them through `get()`. Nothing here talks to the server.

local util = require('code_llama_ls.util')

local M = {}

---@class code_llama_ls.CompletionOptions
---@field enable boolean Show inline completions at all.
---@field languages table<string, boolean> Per-filetype switch; `["*"]` is the default.
---@field provider "auto"|"native"|"fallback" `auto`: vim.lsp.inline_completion when Neovim has it.
---@field debounce_ms integer Delay before the fallback asks the server (native: Neovim's own).

---@class code_llama_ls.YankOptions
---@field enable boolean Send yanked text to the server as completion context.
---@field max_bytes integer Longer yanks are not sent.

---@class code_llama_ls.ExplainOptions
---@field max_width integer Widest the explanation window gets (columns).
---@field max_height integer Tallest the explanation window gets (lines).
---@field border string|string[] Border of the explanation window.
---@field enter boolean Move the cursor into the explanation window.

---@class code_llama_ls.Options
---@field cmd string[]|fun(dispatchers: table): table The server command.
---@field filetypes string[]|nil Filetypes to attach to; nil attaches to every file buffer.
---@field root_markers string[] Files that mark a project root (the server needs none).
---@field settings table<string, any> Server settings (extensions/PROTOCOL.md), sent under `codeLlama`.
---@field completions code_llama_ls.CompletionOptions
---@field debounce_ms integer|nil Shorthand for `completions.debounce_ms`.
---@field yanks code_llama_ls.YankOptions
---@field explain code_llama_ls.ExplainOptions
---@field log_lines integer Server log lines kept for :CodeLlamaLog.

---@type code_llama_ls.Options
M.defaults = {
  cmd = { 'code-llama-ls', 'serve' },
  filetypes = nil,
  root_markers = { '.git', '.hg', 'pyproject.toml', 'package.json', 'Cargo.toml', 'go.mod' },
  settings = {},
  completions = {
    enable = true,
    languages = { ['*'] = true },
    provider = 'auto',
    debounce_ms = 150,
  },
  debounce_ms = nil,
  yanks = {
    enable = true,
    max_bytes = 16384,
  },
  explain = {
    max_width = 88,
    max_height = 24,
    border = 'rounded',
    enter = true,
  },
  log_lines = 2000,
}

--- The LSP config name, also the client name.
M.name = 'code_llama_ls'

---@type code_llama_ls.Options|nil
local options = nil

--- Completions switched on or off at run time (:CodeLlamaToggle); nil follows the options.
---@type boolean|nil
M.toggled = nil

--- Merge `opts` over the defaults and keep them.
---@param opts code_llama_ls.Options|nil
---@return code_llama_ls.Options
function M.set(opts)
  opts = opts or {}
  util.validate('opts', opts, 'table')
  local merged = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts)
  -- Lists replace rather than merge: a user's cmd must not keep our trailing args.
  if opts.cmd ~= nil then
    merged.cmd = opts.cmd
  end
  if opts.filetypes ~= nil then
    merged.filetypes = opts.filetypes
  end
  if opts.root_markers ~= nil then
    merged.root_markers = opts.root_markers
  end
  if opts.debounce_ms ~= nil then
    merged.completions.debounce_ms = opts.debounce_ms
  end
  util.validate('cmd', merged.cmd, { 'table', 'function' })
  util.validate('settings', merged.settings, 'table')
  util.validate('completions', merged.completions, 'table')
  util.validate('yanks', merged.yanks, 'table')
  options = merged
  return merged
end

--- The options in effect (the defaults before `setup()`).
---@return code_llama_ls.Options
function M.get()
  return options or M.defaults
end

--- Whether `setup()` has run.
---@return boolean
function M.is_setup()
  return options ~= nil
end

--- Server settings as the server reads them: nested under `codeLlama`.
---@return table
function M.server_settings()
  local settings = M.get().settings or {}
  if next(settings) == nil then
    return { codeLlama = vim.empty_dict() }
  end
  return { codeLlama = vim.deepcopy(settings) }
end

--- Whether inline completions should show for a filetype right now.
---@param filetype string
---@return boolean
function M.completions_enabled(filetype)
  local completions = M.get().completions
  local on = completions.enable
  if M.toggled ~= nil then
    on = M.toggled
  end
  if not on then
    return false
  end
  local languages = completions.languages or {}
  local value = languages[filetype]
  if value == nil then
    value = languages['*']
  end
  return value ~= false
end

--- Whether Neovim's own inline completion (0.12+) draws the ghost text.
---@return boolean
function M.use_native_completion()
  local provider = M.get().completions.provider
  local has_native = vim.lsp.inline_completion ~= nil
  if provider == 'fallback' then
    return false
  end
  if provider == 'native' and not has_native then
    vim.notify_once(
      'code-llama-ls: completions.provider = "native" needs Neovim 0.12; using the fallback',
      vim.log.levels.WARN
    )
  end
  return has_native
end

return M
