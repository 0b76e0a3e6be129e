-- code_llama_ls.ghost: inline completion for Neovim without vim.lsp.inline_completion (0.10, 0.11).
--
-- In insert mode, after `completions.debounce_ms` without typing, asks the
-- server for `textDocument/inlineCompletion` (cancelling the request before
-- it) and draws the first item as ghost text: an inline virtual text after
-- the cursor for its first line, virtual lines for the rest, highlighted
-- `CodeLlamaGhost` (linked to `Comment`). Typing, moving or leaving insert
-- mode hides it; <Plug>(code-llama-accept) inserts it. Nothing is mapped
-- by default.

local config = require('code_llama_ls.config')
local util = require('code_llama_ls.util')

local M = {}

local api = vim.api
local uv = vim.uv or vim.loop

M.namespace = api.nvim_create_namespace('code_llama_ls.ghost')

local TRIGGER_AUTOMATIC = 2

---@class (private) code_llama_ls.GhostItem
---@field text string Whole text to insert.
---@field start_row integer 0-based row of the range to replace.
---@field start_col integer Byte column of the range start.
---@field end_row integer
---@field end_col integer
---@field shown string The part drawn as ghost text (after what is already typed).

---@class (private) code_llama_ls.GhostState
---@field client_id integer
---@field augroup integer
---@field timer uv.uv_timer_t|nil
---@field pending { client_id: integer, id: integer }|nil
---@field items code_llama_ls.GhostItem[]
---@field index integer
---@field anchor { tick: integer, row: integer, col: integer }|nil Where the items apply.

---@type table<integer, code_llama_ls.GhostState>
local states = {}

---@param bufnr integer|nil
---@return integer
local function resolve(bufnr)
  if bufnr == nil or bufnr == 0 then
    return api.nvim_get_current_buf()
  end
  return bufnr
end

local function stop_timer(state)
  local timer = state.timer
  state.timer = nil
  if timer and not timer:is_closing() then
    timer:stop()
    timer:close()
  end
end

local function cancel_pending(state)
  local pending = state.pending
  state.pending = nil
  if pending then
    local client = vim.lsp.get_client_by_id(pending.client_id)
    if client then
      pcall(util.cancel, client, pending.id)
    end
  end
end

--- The cursor of the window showing `bufnr` as (0-based row, byte col), if it is current.
---@param bufnr integer
---@return integer|nil, integer|nil
local function cursor(bufnr)
  if api.nvim_get_current_buf() ~= bufnr then
    return nil, nil
  end
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

local function in_insert_mode()
  return api.nvim_get_mode().mode:sub(1, 1) == 'i'
end

--- Whether the buffer and cursor are still where the items were asked for.
---@param bufnr integer
---@param state code_llama_ls.GhostState
---@return boolean
local function anchored(bufnr, state)
  local anchor = state.anchor
  if not anchor or api.nvim_buf_get_changedtick(bufnr) ~= anchor.tick then
    return false
  end
  local row, col = cursor(bufnr)
  return row == anchor.row and col == anchor.col
end

--- Hide the ghost text and forget the items (the request in flight goes on).
---@param bufnr integer
function M.clear(bufnr)
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, M.namespace, 0, -1)
  end
  local state = states[bufnr]
  if state then
    state.items = {}
    state.index = 0
    state.anchor = nil
  end
end

--- Hide everything and stop asking: InsertLeave, BufLeave, disabling.
---@param bufnr integer
function M.dismiss(bufnr)
  local state = states[bufnr]
  if state then
    stop_timer(state)
    cancel_pending(state)
  end
  M.clear(bufnr)
end

---@param bufnr integer
---@param state code_llama_ls.GhostState
local function render(bufnr, state)
  api.nvim_buf_clear_namespace(bufnr, M.namespace, 0, -1)
  local item = state.items[state.index]
  if not item or item.shown == '' then
    return
  end
  local lines = vim.split(item.shown, '\n', { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], 'CodeLlamaGhost' } }
  end
  local first = { { lines[1], 'CodeLlamaGhost' } }
  if #state.items > 1 then
    local hint = (' (%d/%d)'):format(state.index, #state.items)
    local target = #virt_lines > 0 and virt_lines[#virt_lines] or first
    target[#target + 1] = { hint, 'CodeLlamaGhostHint' }
  end
  api.nvim_buf_set_extmark(bufnr, M.namespace, state.anchor.row, state.anchor.col, {
    virt_text = first,
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
    right_gravity = false,
  })
end

--- Turn an InlineCompletionItem into ours, or nil when it cannot be shown here.
---@param bufnr integer
---@param raw table
---@param encoding string
---@param row integer cursor row
---@param col integer cursor byte col
---@return code_llama_ls.GhostItem|nil
local function to_item(bufnr, raw, encoding, row, col)
  local text = raw.insertText
  if type(text) == 'table' then
    text = text.value -- a snippet: shown and inserted as plain text
  end
  if type(text) ~= 'string' or text == '' then
    return nil
  end
  local start_row, start_col, end_row, end_col = row, col, row, col
  if type(raw.range) == 'table' then
    start_row, start_col = util.byte_position(bufnr, raw.range.start, encoding)
    end_row, end_col = util.byte_position(bufnr, raw.range['end'], encoding)
  end
  -- What the range already holds up to the cursor is typed: show only the rest.
  local typed = ''
  if start_row < row or (start_row == row and start_col < col) then
    typed = table.concat(api.nvim_buf_get_text(bufnr, start_row, start_col, row, col, {}), '\n')
  elseif start_row ~= row or start_col ~= col then
    return nil -- starts after the cursor
  end
  if text:sub(1, #typed) ~= typed then
    return nil
  end
  return {
    text = text,
    start_row = start_row,
    start_col = start_col,
    end_row = end_row,
    end_col = end_col,
    shown = text:sub(#typed + 1),
  }
end

--- Ask the server now for completions at the cursor.
---@param bufnr integer
function M.request(bufnr)
  local state = states[bufnr]
  if not state or not in_insert_mode() then
    return
  end
  local client = vim.lsp.get_client_by_id(state.client_id)
  local row, col = cursor(bufnr)
  if not client or not row or not config.completions_enabled(vim.bo[bufnr].filetype) then
    return
  end
  cancel_pending(state)
  local encoding = client.offset_encoding or 'utf-16'
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = util.position(bufnr, row, col, encoding),
    context = { triggerKind = TRIGGER_AUTOMATIC },
  }
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local request_id
  local ok, id = util.request(client, 'textDocument/inlineCompletion', params, function(err, result)
    if not state.pending or state.pending.id ~= request_id then
      return -- cancelled or superseded
    end
    state.pending = nil
    if err or type(result) ~= 'table' or not api.nvim_buf_is_valid(bufnr) then
      return
    end
    local now_row, now_col = cursor(bufnr)
    if
      api.nvim_buf_get_changedtick(bufnr) ~= tick
      or now_row ~= row
      or now_col ~= col
      or not in_insert_mode()
    then
      return
    end
    local items = {}
    for _, raw in ipairs(result.items or result) do
      items[#items + 1] = to_item(bufnr, raw, encoding, row, col)
    end
    state.items = items
    state.index = #items > 0 and 1 or 0
    state.anchor = { tick = tick, row = row, col = col }
    render(bufnr, state)
  end, bufnr)
  if ok and id then
    request_id = id
    state.pending = { client_id = client.id, id = id }
  end
end

--- Typing or moving: hide what is shown and ask again after the debounce.
---@param bufnr integer
local function on_change(bufnr)
  local state = states[bufnr]
  if not state then
    return
  end
  if state.anchor and anchored(bufnr, state) then
    return -- e.g. CursorMovedI right after the edit we already asked about
  end
  M.clear(bufnr)
  cancel_pending(state)
  stop_timer(state)
  if not config.completions_enabled(vim.bo[bufnr].filetype) then
    return
  end
  local delay = config.get().completions.debounce_ms or 150
  local timer = assert(uv.new_timer())
  state.timer = timer
  timer:start(
    delay,
    0,
    vim.schedule_wrap(function()
      if state.timer == timer then
        stop_timer(state)
        if api.nvim_buf_is_valid(bufnr) then
          M.request(bufnr)
        end
      end
    end)
  )
end

--- Start serving ghost text in a buffer (LspAttach of a code-llama-ls client).
---@param bufnr integer
---@param client_id integer
function M.attach(bufnr, client_id)
  bufnr = resolve(bufnr)
  if states[bufnr] then
    states[bufnr].client_id = client_id
    return
  end
  local group = api.nvim_create_augroup('code_llama_ls.ghost.' .. bufnr, { clear = true })
  states[bufnr] = { client_id = client_id, augroup = group, items = {}, index = 0 }
  api.nvim_create_autocmd({ 'InsertEnter', 'TextChangedI', 'CursorMovedI' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      on_change(bufnr)
    end,
  })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.dismiss(bufnr)
    end,
  })
  api.nvim_create_autocmd({ 'BufUnload', 'BufWipeout' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.detach(bufnr)
    end,
  })
end

--- Stop serving ghost text in a buffer.
---@param bufnr integer
function M.detach(bufnr)
  local state = states[bufnr]
  if not state then
    return
  end
  M.dismiss(bufnr)
  pcall(api.nvim_del_augroup_by_id, state.augroup)
  states[bufnr] = nil
end

--- Whether ghost text is shown in `bufnr`.
---@param bufnr integer
---@return boolean
function M.visible(bufnr)
  bufnr = resolve(bufnr)
  local state = states[bufnr]
  return state ~= nil and state.items[state.index] ~= nil and anchored(bufnr, state)
end

--- Insert the shown completion, or its next word or line (`part`); false when none is
--- shown. The edit is scheduled, so this also works from an `expr` mapping (which may not
--- change text). After a partial accept the rest is asked for again, as after typing.
---@param bufnr? integer
---@param part? 'word'|'line'
---@return boolean
function M.accept(bufnr, part)
  bufnr = resolve(bufnr)
  if not M.visible(bufnr) then
    return false
  end
  local state = states[bufnr]
  local item = state.items[state.index]
  local tick = state.anchor.tick
  vim.schedule(function()
    if not api.nvim_buf_is_valid(bufnr) or api.nvim_buf_get_changedtick(bufnr) ~= tick then
      return
    end
    M.dismiss(bufnr)
    local text = part and require('code_llama_ls.partial').prefix(item.text, part) or item.text
    local lines = vim.split(text, '\n', { plain = true })
    api.nvim_buf_set_text(bufnr, item.start_row, item.start_col, item.end_row, item.end_col, lines)
    local last_row = item.start_row + #lines - 1
    local last_col = (#lines == 1 and item.start_col or 0) + #lines[#lines]
    if api.nvim_get_current_buf() == bufnr then
      api.nvim_win_set_cursor(0, { last_row + 1, last_col })
    end
  end)
  return true
end

--- Show the next (count > 0) or previous candidate of the last answer.
---@param count integer
function M.select(count)
  local bufnr = api.nvim_get_current_buf()
  local state = states[bufnr]
  if not state or #state.items < 2 or not anchored(bufnr, state) then
    return
  end
  state.index = (state.index - 1 + count) % #state.items + 1
  render(bufnr, state)
end

--- Apply a change of the enable switch to every attached buffer.
function M.refresh()
  for bufnr in pairs(states) do
    if not config.completions_enabled(vim.bo[bufnr].filetype) then
      M.dismiss(bufnr)
    end
  end
end

return M
