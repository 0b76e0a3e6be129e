-- code_llama_ls.explain: "Explain selection" in a floating window that fills in as the model writes.
--
-- Runs `workspace/executeCommand` `codeLlama.explain` with `{uri, range}`
-- and a work-done token of ours. The server's `$/progress` reports on that
-- token carry the whole Markdown written so far, so each one re-renders the
-- window; the command's result replaces it at the end. `q` or closing the
-- window cancels the request. Servers that report on a token of their own
-- (window/workDoneProgress/create) are followed too.

local config = require('code_llama_ls.config')
local util = require('code_llama_ls.util')

local M = {}

local api = vim.api

local COMMAND = 'codeLlama.explain'
local PROGRESS_TITLE = 'Explaining selection'
local REQUEST_CANCELLED = -32800

---@class (private) code_llama_ls.ExplainSession
---@field client_id integer
---@field request_id integer|nil
---@field token string
---@field seq integer
---@field buf integer
---@field win integer
---@field done boolean The command answered (or failed).
---@field reported boolean A progress report arrived.

---@type table<string, code_llama_ls.ExplainSession> by progress token
local sessions = {}
local counter = 0

---@param session code_llama_ls.ExplainSession
---@param text string
local function size_for(session, text)
  local opts = config.get().explain
  local lines = vim.split(text, '\n', { plain = true })
  local max_width = math.max(20, math.min(opts.max_width or 88, vim.o.columns - 4))
  local width = 30
  for _, line in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(line))
  end
  width = math.min(width, max_width)
  local height = 0
  for _, line in ipairs(lines) do
    height = height + math.max(1, math.ceil(vim.fn.strdisplaywidth(line) / width))
  end
  local max_height = math.max(3, math.min(opts.max_height or 24, vim.o.lines - 6))
  return lines, width, math.max(1, math.min(height, max_height))
end

--- Show `text` (Markdown) in the session's window, resizing it to fit.
---@param session code_llama_ls.ExplainSession
---@param text string
local function render(session, text)
  if not api.nvim_buf_is_valid(session.buf) then
    return
  end
  local lines, width, height = size_for(session, text)
  vim.bo[session.buf].modifiable = true
  api.nvim_buf_set_lines(session.buf, 0, -1, false, lines)
  vim.bo[session.buf].modifiable = false
  if api.nvim_win_is_valid(session.win) then
    api.nvim_win_set_config(session.win, { width = width, height = height })
  end
end

---@param session code_llama_ls.ExplainSession
local function finish(session)
  session.done = true
  for token, s in pairs(sessions) do
    if s == session then
      sessions[token] = nil
    end
  end
end

---@param session code_llama_ls.ExplainSession
local function cancel(session)
  if session.done then
    return
  end
  local client = vim.lsp.get_client_by_id(session.client_id)
  if client and session.request_id then
    pcall(util.cancel, client, session.request_id)
  end
  finish(session)
end

--- Open the (empty) explanation window next to the cursor.
---@param session code_llama_ls.ExplainSession
local function open_window(session)
  local opts = config.get().explain
  local buf = api.nvim_create_buf(false, true)
  vim.bo[buf].bufhidden = 'wipe'
  vim.bo[buf].filetype = 'markdown'
  local text = '_Explaining…_'
  local _, width, height = size_for(session, text)
  local float = vim.lsp.util.make_floating_popup_options(width, height, {
    border = opts.border,
    focusable = true,
  })
  if opts.border and opts.border ~= 'none' then
    float.title = ' Code Llama '
    float.title_pos = 'left'
  end
  local win = api.nvim_open_win(buf, opts.enter ~= false, float)
  vim.wo[win].wrap = true
  vim.wo[win].linebreak = true
  vim.wo[win].conceallevel = 2
  vim.wo[win].concealcursor = 'n'
  session.buf, session.win = buf, win
  render(session, text)

  vim.keymap.set('n', 'q', function()
    if api.nvim_win_is_valid(win) then
      api.nvim_win_close(win, true)
    end
  end, { buffer = buf, nowait = true, desc = 'Close the explanation (cancels it)' })
  local group = api.nvim_create_augroup('code_llama_ls.explain.' .. win, { clear = true })
  api.nvim_create_autocmd('WinClosed', {
    group = group,
    pattern = tostring(win),
    once = true,
    callback = function()
      cancel(session)
      pcall(api.nvim_del_augroup_by_id, group)
    end,
  })
end

--- Explain `range` (an LSP range in the client's encoding) of `bufnr`.
---@param bufnr integer
---@param range lsp.Range
---@return boolean started
function M.explain_range(bufnr, range)
  local client = util.attached_client(bufnr)
  if not client then
    return false
  end
  counter = counter + 1
  local token = ('code-llama-ls.nvim/%d/%d'):format(vim.fn.getpid(), counter)
  ---@type code_llama_ls.ExplainSession
  local session = {
    client_id = client.id,
    token = token,
    seq = counter,
    buf = -1,
    win = -1,
    done = false,
    reported = false,
  }
  sessions[token] = session
  open_window(session)
  local params = {
    command = COMMAND,
    arguments = { { uri = vim.uri_from_bufnr(bufnr), range = range } },
    workDoneToken = token,
  }
  local ok, request_id = util.request(
    client,
    'workspace/executeCommand',
    params,
    function(err, result)
      if session.done then
        return
      end
      finish(session)
      if err then
        if err.code ~= REQUEST_CANCELLED then
          render(session, ('**code-llama-ls:** %s'):format(err.message or vim.inspect(err)))
        end
        return
      end
      if type(result) == 'string' and result ~= '' then
        render(session, result)
      elseif not session.reported then
        render(session, '_Nothing to explain._')
      end
    end,
    bufnr
  )
  if not ok then
    finish(session)
    render(session, '**code-llama-ls:** the server did not take the request.')
    return false
  end
  session.request_id = request_id
  return true
end

--- The LSP range of whole lines `line1`..`line2` (1-based, inclusive).
---@param bufnr integer
---@param line1 integer
---@param line2 integer
---@param encoding string
---@return lsp.Range
function M.line_range(bufnr, line1, line2, encoding)
  local last = util.line(bufnr, line2 - 1)
  return {
    start = { line = line1 - 1, character = 0 },
    ['end'] = { line = line2 - 1, character = util.char_col(last, #last, encoding) },
  }
end

--- :[range]CodeLlamaExplain: the lines of the range, or with no range the
--- definition around the cursor (an empty range; the server picks it).
---@param opts { range: integer, line1: integer, line2: integer }
function M.command(opts)
  local bufnr = api.nvim_get_current_buf()
  local client = util.attached_client(bufnr)
  if not client then
    return
  end
  local encoding = client.offset_encoding or 'utf-16'
  local range
  if opts.range and opts.range > 0 then
    range = M.line_range(bufnr, opts.line1, opts.line2, encoding)
  else
    local pos = api.nvim_win_get_cursor(0)
    local here = util.position(bufnr, pos[1] - 1, pos[2], encoding)
    range = { start = here, ['end'] = here }
  end
  M.explain_range(bufnr, range)
end

--- <Plug>(code-llama-explain) in visual mode: the selection (characterwise or linewise).
function M.visual()
  local bufnr = api.nvim_get_current_buf()
  local mode = vim.fn.mode()
  local a, b = vim.fn.getpos('v'), vim.fn.getpos('.')
  api.nvim_feedkeys(api.nvim_replace_termcodes('<Esc>', true, false, true), 'nx', false)
  if (a[2] > b[2]) or (a[2] == b[2] and a[3] > b[3]) then
    a, b = b, a
  end
  local client = util.attached_client(bufnr)
  if not client then
    return
  end
  local encoding = client.offset_encoding or 'utf-16'
  if mode ~= 'v' then -- V and blockwise: whole lines
    M.explain_range(bufnr, M.line_range(bufnr, a[2], b[2], encoding))
    return
  end
  local start_row, start_col = a[2] - 1, a[3] - 1
  local end_row, end_col = b[2] - 1, b[3] - 1
  local end_line = util.line(bufnr, end_row)
  if vim.o.selection ~= 'exclusive' and end_col < #end_line then
    -- Inclusive: take the whole (possibly multibyte) last character.
    local char = vim.fn.strcharpart(end_line:sub(end_col + 1), 0, 1)
    end_col = end_col + math.max(1, #char)
  end
  M.explain_range(bufnr, {
    start = util.position(bufnr, start_row, start_col, encoding),
    ['end'] = util.position(bufnr, end_row, end_col, encoding),
  })
end

--- Feed a `$/progress` notification (from the LspProgress autocmd).
---@param client_id integer
---@param params { token: string|integer, value: table }
function M.on_progress(client_id, params)
  local value = params.value
  if type(value) ~= 'table' then
    return
  end
  local token = tostring(params.token)
  local session = sessions[token]
  if not session and value.kind == 'begin' and value.title == PROGRESS_TITLE then
    -- A server that ignores our token reports on its own: follow the oldest
    -- explanation of this client that has no reports yet.
    for _, s in pairs(sessions) do
      if s.client_id == client_id and not s.done and not s.reported and s.token ~= token then
        if not session or s.seq < session.seq then
          session = s
        end
      end
    end
    if session then
      session.reported = true
      sessions[token] = session
    end
    return
  end
  if not session or session.client_id ~= client_id or session.done then
    return
  end
  session.reported = true
  if value.kind == 'report' and type(value.message) == 'string' and value.message ~= '' then
    render(session, value.message)
  end
end

return M
