-- code_llama_ls.log: the server's own log (window/logMessage, window/showMessage), kept for :CodeLlamaLog.
--
-- Neovim writes server log messages to lsp.log only at its log level (WARN
-- by default), which hides the per-request timings the server logs at INFO.
-- The handlers here keep the last lines in memory, then defer to Neovim's
-- own handlers, so nothing changes for the user otherwise.

local config = require('code_llama_ls.config')

local M = {}

---@type string[]
local lines = {}

local LEVELS = { 'ERROR', 'WARN', 'INFO', 'LOG', 'DEBUG' }

---@param client_id integer
---@param kind integer
---@param message string
local function add(client_id, kind, message)
  local stamp = os.date('%H:%M:%S')
  local prefix = ('%s [%d] %-5s '):format(stamp, client_id, LEVELS[kind] or tostring(kind))
  for _, line in ipairs(vim.split(message, '\n', { plain = true })) do
    lines[#lines + 1] = prefix .. line
  end
  local keep = config.get().log_lines or 2000
  if #lines > keep then
    lines = vim.list_slice(lines, #lines - keep + 1, #lines)
  end
end

--- Handler for `window/logMessage`.
function M.on_log_message(err, result, ctx, cfg)
  if type(result) == 'table' and result.message then
    add(ctx.client_id, result.type, result.message)
  end
  return vim.lsp.handlers['window/logMessage'](err, result, ctx, cfg)
end

--- Handler for `window/showMessage`: also marks a failed model load in the status.
function M.on_show_message(err, result, ctx, cfg)
  if type(result) == 'table' and result.message then
    add(ctx.client_id, result.type, result.message)
    if result.type == vim.lsp.protocol.MessageType.Error then
      require('code_llama_ls.status').on_error(ctx.client_id, result.message)
    end
  end
  return vim.lsp.handlers['window/showMessage'](err, result, ctx, cfg)
end

--- The kept lines, oldest first.
---@return string[]
function M.lines()
  return vim.deepcopy(lines)
end

--- Open the kept log in a scratch split (:CodeLlamaLog).
function M.open()
  local shown = M.lines()
  if #shown == 0 then
    shown = { 'code-llama-ls: no server messages yet.' }
  end
  table.insert(
    shown,
    1,
    ('-- code-llama-ls server log; Neovim LSP log: %s'):format(vim.lsp.get_log_path())
  )
  vim.cmd('botright new')
  local bufnr = vim.api.nvim_get_current_buf()
  vim.bo[bufnr].buftype = 'nofile'
  vim.bo[bufnr].bufhidden = 'wipe'
  vim.bo[bufnr].swapfile = false
  vim.api.nvim_buf_set_name(bufnr, ('code-llama-ls://log/%d'):format(bufnr))
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, shown)
  vim.bo[bufnr].modifiable = false
  vim.keymap.set('n', 'q', '<Cmd>close<CR>', { buffer = bufnr, nowait = true, desc = 'Close' })
  vim.cmd('normal! G')
end

return M
