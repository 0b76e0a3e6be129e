-- code_llama_ls.inline: completions through Neovim's own vim.lsp.inline_completion (0.12+).
--
-- Neovim requests, debounces, draws the ghost text (namespace
-- `nvim.lsp.inline_completion`, highlight `ComplHint`) and applies it; this
-- module only enables it in the buffers the server is attached to and
-- exposes accept/next/prev for the <Plug> maps. Enabling is per buffer, so
-- other inline-completion servers attached to the same buffer show too.

local M = {}

---@param bufnr integer
---@param on boolean
function M.set(bufnr, on)
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.lsp.inline_completion.enable(on, { bufnr = bufnr })
  end
end

--- Called on LspAttach of a code-llama-ls client.
---@param bufnr integer
---@param on boolean Whether completions are wanted for this buffer now.
function M.attach(bufnr, on)
  M.set(bufnr, on)
end

--- Called on LspDetach of a code-llama-ls client.
---@param bufnr integer
function M.detach(bufnr)
  M.set(bufnr, false)
end

--- Insert the start of `item` that accepting `part` takes, and tell the server (the item's
--- command when that is the whole of it, else didPartiallyAcceptCompletion).
---@param item vim.lsp.inline_completion.Item
---@param part 'word'|'line'
local function accept_part(item, part)
  local text = item.insert_text
  if type(text) ~= 'string' or not item.range then
    return -- a snippet is accepted whole or not at all
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local prefix = require('code_llama_ls.partial').prefix(text, part)
  local lines = vim.split(prefix, '\n', { plain = true })
  local range = item.range
  vim.api.nvim_buf_set_text(
    bufnr,
    range.start.row,
    range.start.col,
    range.end_.row,
    range.end_.col,
    lines
  )
  local start = range.start:to_cursor()
  local col = (#lines == 1 and start[2] or 0) + #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { start[1] + #lines - 1, col })
  local client = vim.lsp.get_client_by_id(item.client_id)
  if not (client and item.command) then
    return
  end
  if prefix == text then
    client:exec_cmd(item.command, { bufnr = bufnr })
  else
    client:notify('textDocument/didPartiallyAcceptCompletion', {
      item = { insertText = text, command = item.command },
      acceptedLength = vim.fn.strchars(prefix),
    })
  end
end

--- Accept the shown completion, or its next word or line (`part`); false when none is
--- shown (safe in <expr> maps).
---@param part? 'word'|'line'
---@return boolean
function M.accept(part)
  if part == nil then
    return vim.lsp.inline_completion.get()
  end
  return vim.lsp.inline_completion.get({
    on_accept = function(item)
      accept_part(item, part)
    end,
  })
end

--- Show the next (count > 0) or previous candidate.
---@param count integer
function M.select(count)
  vim.lsp.inline_completion.select({ count = count })
end

--- Whether a completion is shown in `bufnr`.
---@param bufnr integer
---@return boolean
function M.visible(bufnr)
  local ns = vim.api.nvim_create_namespace('nvim.lsp.inline_completion')
  return #vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { limit = 1 }) > 0
end

return M
