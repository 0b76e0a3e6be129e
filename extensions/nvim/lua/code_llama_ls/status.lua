-- code_llama_ls.status: the last `codeLlama/status` each client was sent, for statuslines and health.
--
-- The server notifies `codeLlama/status` on every state change
-- (loading/ready/generating/error, model, device, last latency) and answers
-- `codeLlama/getStatus`. Until a server sends its first notification, the
-- state is derived from its model-loading work-done progress instead.
-- Every change fires `User CodeLlamaStatus` with `data = { client_id, status }`.

local util = require('code_llama_ls.util')

local M = {}

---@class code_llama_ls.Status
---@field state "loading"|"ready"|"generating"|"error"
---@field model string|nil
---@field device string|nil
---@field message string|nil
---@field lastCompletionMs number|nil
---@field prompt string|nil what completion prompts are: FIM family and layout, or left-to-right
---@field acceptance table|nil The server's acceptance counts, all languages (getStatus only).
---@field source "server"|"progress" Where the state came from.

---@type table<integer, code_llama_ls.Status>
local by_client = {}

local function nil_if_null(value)
  if value == vim.NIL then
    return nil
  end
  return value
end

---@param client_id integer
---@param status code_llama_ls.Status
local function store(client_id, status)
  by_client[client_id] = status
  vim.schedule(function()
    vim.api.nvim_exec_autocmds('User', {
      pattern = 'CodeLlamaStatus',
      modeline = false,
      data = { client_id = client_id, status = status },
    })
  end)
end

--- Turn a status object from the server into ours (JSON nulls become nil).
---@param result table
---@return code_llama_ls.Status
function M.normalize(result)
  return {
    state = nil_if_null(result.state) or 'ready',
    model = nil_if_null(result.model),
    device = nil_if_null(result.device),
    message = nil_if_null(result.message),
    lastCompletionMs = nil_if_null(result.lastCompletionMs),
    prompt = nil_if_null(result.prompt),
    acceptance = type(result.acceptance) == 'table' and nil_if_null(result.acceptance.total)
      or nil,
    source = 'server',
  }
end

--- "accepted 3 of 8 shown (38%)", or nil before the server has offered anything.
---@param status code_llama_ls.Status|nil
---@return string|nil
function M.acceptance(status)
  local counts = status and status.acceptance
  if type(counts) ~= 'table' or type(counts.acceptanceRate) ~= 'number' then
    return nil
  end
  local base = counts.rateOf == 'shown' and counts.shown or counts.offered
  return ('accepted %d of %d %s (%d%%)'):format(
    counts.taken or 0,
    base or 0,
    counts.rateOf or 'offered',
    math.floor(counts.acceptanceRate * 100 + 0.5)
  )
end

--- Handler for the `codeLlama/status` notification (goes in the client's `handlers`).
---@param result table
---@param ctx table
function M.on_status(_, result, ctx)
  if type(result) == 'table' then
    store(ctx.client_id, M.normalize(result))
  end
end

--- Feed a `$/progress` value; only used while the server has sent no status of its own.
---@param client_id integer
---@param value table
---@param title string|nil
function M.on_progress(client_id, value, title)
  local current = by_client[client_id]
  if current and current.source == 'server' then
    return
  end
  if type(title) ~= 'string' or not title:lower():find('loading model', 1, true) then
    return
  end
  if value.kind == 'begin' then
    store(client_id, { state = 'loading', message = title, source = 'progress' })
  elseif value.kind == 'end' and not (current and current.state == 'error') then
    store(client_id, { state = 'ready', source = 'progress' })
  end
end

--- An error the server showed (window/showMessage) while no status of its own exists.
---@param client_id integer
---@param message string
function M.on_error(client_id, message)
  local current = by_client[client_id]
  if current and current.source == 'server' then
    return
  end
  if current and current.state == 'loading' then
    store(client_id, { state = 'error', message = message, source = 'progress' })
  end
end

--- The last known status of a client.
---@param client_id integer
---@return code_llama_ls.Status|nil
function M.get(client_id)
  return by_client[client_id]
end

--- Drop what is known of a client (it exited).
---@param client_id integer
function M.forget(client_id)
  by_client[client_id] = nil
end

--- Ask a client for its status (`codeLlama/getStatus`), waiting up to `timeout_ms`.
---@param client vim.lsp.Client
---@param timeout_ms? integer
---@return code_llama_ls.Status|nil, string|nil status, or nil and why not
function M.request(client, timeout_ms)
  -- `{}` rather than no params: pygls 2.1 answers a request without params with an error.
  local params = vim.empty_dict()
  local response, err = util.request_sync(client, 'codeLlama/getStatus', params, timeout_ms or 2000)
  if not response then
    return nil, err or 'no answer'
  end
  if response.err then
    return nil, response.err.message or vim.inspect(response.err)
  end
  if type(response.result) ~= 'table' then
    return nil, 'unexpected answer: ' .. vim.inspect(response.result)
  end
  local status = M.normalize(response.result)
  by_client[client.id] = status
  return status, nil
end

--- One line describing a status, e.g. "ready · model on cpu · last 42 ms".
---@param status code_llama_ls.Status|nil
---@return string
function M.describe(status)
  if not status then
    return 'starting'
  end
  local parts = { status.state }
  if status.model then
    parts[#parts + 1] = status.device and ('%s on %s'):format(status.model, status.device)
      or status.model
  end
  if status.lastCompletionMs then
    parts[#parts + 1] = ('last completion %d ms'):format(math.floor(status.lastCompletionMs + 0.5))
  end
  if status.message and status.state ~= 'ready' then
    parts[#parts + 1] = status.message
  end
  parts[#parts + 1] = M.acceptance(status)
  return table.concat(parts, ' · ')
end

--- A short statusline component for the current buffer ('' when no client is attached).
---@return string
function M.statusline()
  local client = util.client(vim.api.nvim_get_current_buf())
  if not client then
    return ''
  end
  local status = by_client[client.id]
  return 'Code Llama: ' .. (status and status.state or 'starting')
end

return M
