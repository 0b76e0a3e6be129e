-- code_llama_ls.prompt: the prompt the model would see at the cursor, in a scratch split.
--
-- Runs `workspace/executeCommand` `codeLlama.showPrompt` with `{uri, position}`
-- (the position in the client's offset encoding) and shows the report's
-- Markdown: each part of the prompt with the file and lines its code came
-- from, then the prompt text. Nothing is generated.

local util = require('code_llama_ls.util')

local M = {}

local api = vim.api

local COMMAND = 'codeLlama.showPrompt'

--- Show `markdown` in a new scratch split below everything; `q` closes it.
---@param markdown string
---@return integer bufnr
function M.open(markdown)
  if api.nvim_get_mode().mode:sub(1, 1) == 'i' then
    vim.cmd('stopinsert')
  end
  vim.cmd('botright new')
  local bufnr = api.nvim_get_current_buf()
  vim.bo[bufnr].buftype = 'nofile'
  vim.bo[bufnr].bufhidden = 'wipe'
  vim.bo[bufnr].swapfile = false
  api.nvim_buf_set_name(bufnr, ('code-llama-ls://prompt/%d'):format(bufnr))
  api.nvim_buf_set_lines(bufnr, 0, -1, false, vim.split(markdown, '\n', { plain = true }))
  vim.bo[bufnr].modifiable = false
  vim.bo[bufnr].filetype = 'markdown'
  vim.keymap.set('n', 'q', '<Cmd>close<CR>', { buffer = bufnr, nowait = true, desc = 'Close' })
  return bufnr
end

--- Ask the server for the prompt at the cursor of the current window and show it
--- (:CodeLlamaPrompt). In Normal mode that is before the character under the
--- cursor, in Insert mode where the next character would go.
function M.show()
  local bufnr = api.nvim_get_current_buf()
  local client = util.attached_client(bufnr)
  if not client then
    return
  end
  local encoding = client.offset_encoding or 'utf-16'
  local pos = api.nvim_win_get_cursor(0)
  local params = {
    command = COMMAND,
    arguments = {
      {
        uri = vim.uri_from_bufnr(bufnr),
        position = util.position(bufnr, pos[1] - 1, pos[2], encoding),
      },
    },
  }
  local ok = util.request(client, 'workspace/executeCommand', params, function(err, result)
    if err then
      util.notify(
        ('could not show the prompt: %s'):format(err.message or vim.inspect(err)),
        vim.log.levels.ERROR
      )
      return
    end
    local markdown = type(result) == 'table' and result.markdown or nil
    if type(markdown) ~= 'string' or markdown == '' then
      util.notify('the server sent no prompt report', vim.log.levels.ERROR)
      return
    end
    vim.schedule(function()
      M.open(markdown)
    end)
  end, bufnr)
  if not ok then
    util.notify('the server did not take the request', vim.log.levels.ERROR)
  end
end

return M
