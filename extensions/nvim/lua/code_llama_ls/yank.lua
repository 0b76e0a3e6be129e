-- code_llama_ls.yank: yanked text as completion context.
--
-- On TextYankPost of a yank (`y`, not a delete or change) in a buffer the
-- server is attached to, sends `codeLlama/didYank` `{text, uri}`. The server
-- keeps the last few and puts them in completion prompts (shown by
-- :CodeLlamaPrompt as "yanked text"). Blank yanks and yanks over
-- `yanks.max_bytes` are not sent; `yanks.enable = false` sends none.

local config = require('code_llama_ls.config')
local util = require('code_llama_ls.util')

local M = {}

M.method = 'codeLlama/didYank'

--- The text of a TextYankPost event worth sending, or nil.
---@param event table v:event of TextYankPost
---@param max_bytes integer
---@return string|nil
function M.text(event, max_bytes)
  if event.operator ~= 'y' or type(event.regcontents) ~= 'table' then
    return nil
  end
  local text = table.concat(event.regcontents, '\n')
  if not text:find('%S') or #text > max_bytes then
    return nil
  end
  return text
end

--- TextYankPost handler: tell the server attached to `bufnr` what was yanked there.
---@param bufnr integer
function M.on_yank(bufnr)
  local opts = config.get().yanks or {}
  if opts.enable == false then
    return
  end
  local text = M.text(vim.v.event, opts.max_bytes or 16384)
  if not text then
    return
  end
  for _, client in ipairs(util.clients(bufnr)) do
    util.send_notification(client, M.method, { text = text, uri = vim.uri_from_bufnr(bufnr) })
  end
end

return M
