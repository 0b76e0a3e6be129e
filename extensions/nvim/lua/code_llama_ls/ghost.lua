-- code_llama_ls.ghost: the plugin's own ghost text.
--
-- Neovim 0.10 and 0.11 (no vim.lsp.inline_completion): in insert mode,
-- after `completions.debounce_ms` without typing, asks the server for
-- `textDocument/inlineCompletion` (cancelling the request before it) and
-- draws the first item as ghost text: an inline virtual text after the
-- cursor for its first line, virtual lines for the rest, highlighted
-- `CodeLlamaGhost` (linked to `Comment`). Typing, moving or leaving insert
-- mode hides it; <Plug>(code-llama-accept) inserts it. It reports what it
-- shows and what is accepted to the server (code_llama_ls.report).
--
-- Alternatives (<Plug>(code-llama-next)/-prev): when the answer shown holds
-- one item, an Invoked request asks for the server's other candidates and
-- shows the next one. On Neovim 0.12 this module runs "manual" beside
-- vim.lsp.inline_completion: it never asks by itself and only shows those
-- alternatives (highlighted `ComplHint`, as Neovim's own), until the cursor
-- moves. Nothing is mapped by default.

local config = require('code_llama_ls.config')
local util = require('code_llama_ls.util')

local M = {}

local api = vim.api
local uv = vim.uv or vim.loop

M.namespace = api.nvim_create_namespace('code_llama_ls.ghost')

local TRIGGER_INVOKED = 1
local TRIGGER_AUTOMATIC = 2

---@class (private) code_llama_ls.GhostItem
---@field text string Whole text to insert.
---@field start_row integer 0-based row of the range to replace.
---@field start_col integer Byte column of the range start.
---@field end_row integer
---@field end_col integer
---@field shown string The part drawn as ghost text (after what is already typed).
---@field raw table The InlineCompletionItem as the server sent it (for the reports).
---@field reported boolean|nil Whether its showing was reported.

---@class (private) code_llama_ls.GhostState
---@field client_id integer
---@field augroup integer
---@field manual boolean Beside Neovim's own inline completion: shows only asked-for alternatives.
---@field timer uv.uv_timer_t|nil
---@field pending { client_id: integer, id: integer, tick: integer, row: integer, col: integer }|nil
---@field items code_llama_ls.GhostItem[]
---@field index integer
---@field invoked boolean Whether the items answer an Invoked request (all the candidates).
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

--- Whether the request in flight was sent from where the buffer and cursor are now.
---@param bufnr integer
---@param state code_llama_ls.GhostState
---@return boolean
local function pending_here(bufnr, state)
  local pending = state.pending
  if not pending or api.nvim_buf_get_changedtick(bufnr) ~= pending.tick then
    return false
  end
  local row, col = cursor(bufnr)
  return row == pending.row and col == pending.col
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
    state.invoked = false
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
  -- Beside Neovim's own ghost text, look like it.
  local hl = state.manual and 'ComplHint' or 'CodeLlamaGhost'
  local hint_hl = state.manual and 'ComplHintMore' or 'CodeLlamaGhostHint'
  local lines = vim.split(item.shown, '\n', { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], hl } }
  end
  local first = { { lines[1], hl } }
  if #state.items > 1 then
    local hint = (' (%d/%d)'):format(state.index, #state.items)
    local target = #virt_lines > 0 and virt_lines[#virt_lines] or first
    target[#target + 1] = { hint, hint_hl }
  end
  api.nvim_buf_set_extmark(bufnr, M.namespace, state.anchor.row, state.anchor.col, {
    virt_text = first,
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
    right_gravity = false,
  })
  -- Neovim 0.12's own path reports no shows; counting only ours there would skew the rate.
  local client = vim.lsp.get_client_by_id(state.client_id)
  if client and not state.manual and not item.reported then
    item.reported = true
    require('code_llama_ls.report').shown(client, item.raw)
  end
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
    raw = raw,
  }
end

--- Ask the server for completions at the cursor and show the one `choose` picks.
---@param bufnr integer
---@param state code_llama_ls.GhostState
---@param trigger integer InlineCompletionTriggerKind
---@param choose fun(items: code_llama_ls.GhostItem[]): integer The index to show first.
---@param on_shown? fun() Called after items are shown.
local function ask(bufnr, state, trigger, choose, on_shown)
  local client = vim.lsp.get_client_by_id(state.client_id)
  local row, col = cursor(bufnr)
  if not client or not row then
    return
  end
  cancel_pending(state)
  local encoding = client.offset_encoding or 'utf-16'
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = util.position(bufnr, row, col, encoding),
    context = { triggerKind = trigger },
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
    state.index = #items > 0 and choose(items) or 0
    state.invoked = trigger == TRIGGER_INVOKED
    state.anchor = { tick = tick, row = row, col = col }
    render(bufnr, state)
    if #items > 0 and on_shown then
      on_shown()
    end
  end, bufnr)
  if ok and id then
    request_id = id
    state.pending = { client_id = client.id, id = id, tick = tick, row = row, col = col }
  end
end

--- Ask the server now for completions at the cursor (the automatic request after typing).
---@param bufnr integer
function M.request(bufnr)
  local state = states[bufnr]
  if not state or state.manual or not in_insert_mode() then
    return
  end
  if not config.completions_enabled(vim.bo[bufnr].filetype) then
    return
  end
  ask(bufnr, state, TRIGGER_AUTOMATIC, function()
    return 1
  end)
end

--- Ask the server for all its candidates at the cursor (an Invoked request) and show the
--- one `count` steps from the text shown now (`shown`), or the first when nothing is shown
--- or it is not among them. `on_shown` runs once they are drawn.
---@param bufnr integer
---@param count integer
---@param shown string|nil The text shown now (Neovim's own item, or ours).
---@param on_shown? fun()
function M.alternatives(bufnr, count, shown, on_shown)
  bufnr = resolve(bufnr)
  local state = states[bufnr]
  if not state or not in_insert_mode() then
    return
  end
  if not config.completions_enabled(vim.bo[bufnr].filetype) then
    return
  end
  stop_timer(state) -- the automatic request would cancel this one
  ask(bufnr, state, TRIGGER_INVOKED, function(items)
    for i, item in ipairs(items) do
      if item.text == shown then
        return (i - 1 + count) % #items + 1
      end
    end
    return 1
  end, on_shown)
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
  if pending_here(bufnr, state) then
    return -- the answer in flight is for here
  end
  if state.manual then
    M.clear(bufnr) -- Neovim's own completion asks again
    cancel_pending(state)
    return
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

--- Start serving ghost text in a buffer (LspAttach of a code-llama-ls client). With
--- `manual`, Neovim's own inline completion serves the buffer: only alternatives asked
--- for with M.alternatives() show.
---@param bufnr integer
---@param client_id integer
---@param manual? boolean
function M.attach(bufnr, client_id, manual)
  bufnr = resolve(bufnr)
  if states[bufnr] then
    states[bufnr].client_id = client_id
    states[bufnr].manual = manual == true
    return
  end
  local group = api.nvim_create_augroup('code_llama_ls.ghost.' .. bufnr, { clear = true })
  states[bufnr] = {
    client_id = client_id,
    augroup = group,
    manual = manual == true,
    items = {},
    index = 0,
    invoked = false,
  }
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
--- change text). After a partial accept the rest is asked for again, as after typing. The
--- server is told (the item's command, or didPartiallyAcceptCompletion).
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
  local client_id = state.client_id
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
    local client = vim.lsp.get_client_by_id(client_id)
    if client then
      require('code_llama_ls.report').accepted(client, item.raw, item.text, text, bufnr)
    end
  end)
  return true
end

--- Show the next (count > 0) or previous candidate. When the answer shown holds only one
--- (automatic requests on a CPU do) or none, ask for the alternatives (M.alternatives).
---@param count integer
function M.select(count)
  local bufnr = api.nvim_get_current_buf()
  local state = states[bufnr]
  if not state then
    return
  end
  local n = #state.items
  if anchored(bufnr, state) and (n > 1 or (n == 1 and state.invoked)) then
    state.index = (state.index - 1 + count) % n + 1
    render(bufnr, state)
    return
  end
  local item = M.visible(bufnr) and state.items[state.index] or nil
  M.alternatives(bufnr, count, item and item.text or nil)
end

--- The texts of the items the buffer's ghost text has and the index of the one shown
--- (for tests and statuslines).
---@param bufnr? integer
---@return string[], integer
function M.items(bufnr)
  local state = states[resolve(bufnr)]
  if not state then
    return {}, 0
  end
  local texts = {}
  for i, item in ipairs(state.items) do
    texts[i] = item.text
  end
  return texts, state.index
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
