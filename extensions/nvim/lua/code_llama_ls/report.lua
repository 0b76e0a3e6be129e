-- code_llama_ls.report: telling the server what the user did with a suggestion.
--
-- The server counts suggestions shown, accepted and partly accepted
-- (`acceptance` in `codeLlama/getStatus`, :CodeLlamaStatus). A whole accept
-- runs the item's own command (`codeLlama.didAcceptCompletion`), as Neovim
-- 0.12's vim.lsp.inline_completion does; a shown item and a partial accept
-- are Copilot's notifications `textDocument/didShowCompletion` and
-- `textDocument/didPartiallyAcceptCompletion`, with the item as received.

local util = require('code_llama_ls.util')

local M = {}

---@param value any
---@return table|nil
local function table_or_nil(value)
  return type(value) == 'table' and value or nil
end

--- The item was drawn as ghost text.
---@param client vim.lsp.Client
---@param item table The InlineCompletionItem as the server sent it.
function M.shown(client, item)
  util.send_notification(client, 'textDocument/didShowCompletion', { item = item })
end

--- `taken` (the start of the item's text, or all of it) went into the buffer.
---@param client vim.lsp.Client
---@param item table The InlineCompletionItem as the server sent it.
---@param text string The item's whole text.
---@param taken string What was inserted.
---@param bufnr integer
function M.accepted(client, item, text, taken, bufnr)
  local command = table_or_nil(item.command)
  if not command then
    return -- not one of ours: nothing to count
  end
  if taken == text then
    util.exec_cmd(client, command, bufnr)
  elseif taken ~= '' then
    util.send_notification(client, 'textDocument/didPartiallyAcceptCompletion', {
      item = item,
      acceptedLength = vim.fn.strchars(taken),
    })
  end
end

return M
