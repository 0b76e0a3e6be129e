-- code_llama_ls.inline: completions through Neovim's own vim.lsp.inline_completion (0.12+).
--
-- Neovim requests, debounces, draws the ghost text (namespace
-- `nvim.lsp.inline_completion`, highlight `ComplHint`) and applies it; this
-- module only enables it in the buffers the server is attached to and
-- exposes accept/next/prev for the <Plug> maps. Enabling is per buffer, so
-- other inline-completion servers attached to the same buffer show too.
--
-- Neovim only sends automatic requests, and on a CPU the server answers
-- those with one item. When Neovim holds one item (or none), next/prev ask
-- for the server's alternatives with an Invoked request and show them with
-- the plugin's ghost text (code_llama_ls.ghost, "manual"), after dropping
-- Neovim's item; accept, accept word and accept line then take from those.

local M = {}

local api = vim.api

--- Neovim's inline completion state of a buffer, if this Neovim's internals are as known.
---@param bufnr integer
---@return table|nil
local function completor(bufnr)
  local ok, capability = pcall(require, 'vim.lsp._capability')
  local class = ok
    and type(capability) == 'table'
    and type(capability.all) == 'table'
    and capability.all.inline_completion
  local active = type(class) == 'table' and class.active
  local found = type(active) == 'table' and active[bufnr] or nil
  return type(found) == 'table' and found or nil
end

--- How many items Neovim holds for the buffer (nil: cannot tell) and the text of the one
--- it shows (nil: none or cannot tell).
---@param bufnr integer
---@return integer|nil, string|nil
local function native_items(bufnr)
  local found = completor(bufnr)
  if not found then
    return M.visible(bufnr) and nil or 0, nil
  end
  local current = found.current
  if type(current) ~= 'table' then
    return 0, nil
  end
  local ok, count = pcall(found.count_items, found)
  local text = current.insert_text
  if type(text) == 'table' then
    text = text.value
  end
  return ok and type(count) == 'number' and count or nil, type(text) == 'string' and text or nil
end

--- Drop the item Neovim shows, so its text does not show beside ours nor get accepted.
---@param bufnr integer
local function drop_native(bufnr)
  local found = completor(bufnr)
  if found and type(found.abort) == 'function' and pcall(found.abort, found) then
    return
  end
  -- Public: accepting with a handler that does nothing aborts it.
  vim.lsp.inline_completion.get({ bufnr = bufnr, on_accept = function() end })
end

---@param bufnr integer
---@param on boolean
function M.set(bufnr, on)
  if api.nvim_buf_is_valid(bufnr) then
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
  local bufnr = api.nvim_get_current_buf()
  local prefix = require('code_llama_ls.partial').prefix(text, part)
  local lines = vim.split(prefix, '\n', { plain = true })
  local range = item.range
  api.nvim_buf_set_text(
    bufnr,
    range.start.row,
    range.start.col,
    range.end_.row,
    range.end_.col,
    lines
  )
  local start = range.start:to_cursor()
  local col = (#lines == 1 and start[2] or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { start[1] + #lines - 1, col })
  local client = vim.lsp.get_client_by_id(item.client_id)
  if client then
    local raw = { insertText = text, command = item.command }
    require('code_llama_ls.report').accepted(client, raw, text, prefix, bufnr)
  end
end

--- Accept the shown completion, or its next word or line (`part`); false when none is
--- shown (safe in <expr> maps).
---@param part? 'word'|'line'
---@return boolean
function M.accept(part)
  local ghost = require('code_llama_ls.ghost')
  if ghost.visible(0) then
    return ghost.accept(0, part) -- alternatives the plugin shows
  end
  if part == nil then
    return vim.lsp.inline_completion.get()
  end
  return vim.lsp.inline_completion.get({
    on_accept = function(item)
      accept_part(item, part)
    end,
  })
end

--- Show the next (count > 0) or previous candidate: Neovim's own when it holds several,
--- else the server's alternatives, asked for now and shown by the plugin.
---@param count integer
function M.select(count)
  local bufnr = api.nvim_get_current_buf()
  local ghost = require('code_llama_ls.ghost')
  if ghost.visible(bufnr) then
    ghost.select(count)
    return
  end
  local held, text = native_items(bufnr)
  if held and held > 1 then
    vim.lsp.inline_completion.select({ bufnr = bufnr, count = count })
    return
  end
  ghost.alternatives(bufnr, count, text, function()
    drop_native(bufnr)
  end)
end

--- Whether a completion is shown in `bufnr`.
---@param bufnr integer
---@return boolean
function M.visible(bufnr)
  local ns = api.nvim_create_namespace('nvim.lsp.inline_completion')
  return #api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { limit = 1 }) > 0
end

return M
