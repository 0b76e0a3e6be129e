-- code_llama_ls.util: small helpers that paper over API changes between Neovim 0.10 and 0.12.
--
-- 0.11 turned client functions into methods (`client:request`), changed
-- `vim.str_byteindex`/`vim.str_utfindex` and `vim.validate`; these wrappers
-- pick the form the running Neovim has.

local M = {}

M.has_011 = vim.fn.has('nvim-0.11') == 1

--- Raise a readable error unless `value` has one of the Lua `types`.
---@param name string
---@param value any
---@param types string|string[]
---@param optional? boolean
function M.validate(name, value, types, optional)
  if value == nil and optional then
    return
  end
  types = type(types) == 'table' and types or { types }
  for _, t in ipairs(types) do
    if type(value) == t then
      return
    end
  end
  error(
    ('code-llama-ls: %s: expected %s, got %s'):format(name, table.concat(types, '|'), type(value)),
    3
  )
end

--- Call client method `name`: `client:name(...)` on 0.11+, `client.name(...)` before.
---@param client vim.lsp.Client
---@param name string
local function call(client, name, ...)
  if M.has_011 then
    return client[name](client, ...)
  end
  return client[name](...)
end

--- Send a request; returns (ok, request_id).
---@param client vim.lsp.Client
---@param method string
---@param params table|nil
---@param handler fun(err: table|nil, result: any, ctx: table)
---@param bufnr integer|nil
---@return boolean, integer|nil
function M.request(client, method, params, handler, bufnr)
  return call(client, 'request', method, params, handler, bufnr)
end

--- Send a request and wait for the answer; returns ({err, result}|nil, error message|nil).
---@param client vim.lsp.Client
---@param method string
---@param params table|nil
---@param timeout_ms integer
---@param bufnr integer|nil
function M.request_sync(client, method, params, timeout_ms, bufnr)
  return call(client, 'request_sync', method, params, timeout_ms, bufnr)
end

--- Send a notification to the server.
---@param client vim.lsp.Client
---@param method string
---@param params table|nil
---@return boolean
function M.send_notification(client, method, params)
  return call(client, 'notify', method, params)
end

--- Cancel a request sent with `M.request`.
---@param client vim.lsp.Client
---@param request_id integer
function M.cancel(client, request_id)
  call(client, 'cancel_request', request_id)
end

--- Run a command the server sent (e.g. an inline completion item's), as Neovim 0.12 does
--- after an accept: `client:exec_cmd` on 0.11+, `workspace/executeCommand` before.
---@param client vim.lsp.Client
---@param command lsp.Command
---@param bufnr integer|nil
function M.exec_cmd(client, command, bufnr)
  if M.has_011 and client.exec_cmd then
    client:exec_cmd(command, { bufnr = bufnr })
    return
  end
  local params = { command = command.command, arguments = command.arguments }
  M.request(client, 'workspace/executeCommand', params, function() end, bufnr)
end

--- Stop a client.
---@param client vim.lsp.Client
---@param force? boolean
function M.stop(client, force)
  call(client, 'stop', force)
end

--- Whether a client supports an LSP method.
---@param client vim.lsp.Client
---@param method string
---@return boolean
function M.supports(client, method)
  return call(client, 'supports_method', method)
end

--- The running code-llama-ls clients (optionally only those attached to `bufnr`).
---@param bufnr? integer
---@return vim.lsp.Client[]
function M.clients(bufnr)
  return vim.lsp.get_clients({ name = require('code_llama_ls.config').name, bufnr = bufnr })
end

--- The code-llama-ls client of a buffer, or the first running one.
---@param bufnr? integer
---@return vim.lsp.Client|nil
function M.client(bufnr)
  return M.clients(bufnr)[1]
end

--- The code-llama-ls client of a buffer; when there is none, says so and returns nil.
---@param bufnr integer
---@return vim.lsp.Client|nil
function M.attached_client(bufnr)
  local client = M.client(bufnr)
  if not client then
    M.notify('no code-llama-ls server is attached to this buffer', vim.log.levels.WARN)
  end
  return client
end

--- The byte column of an LSP position's character in `line`.
---@param line string
---@param character integer
---@param encoding string 'utf-8'|'utf-16'|'utf-32'
---@return integer
function M.byte_col(line, character, encoding)
  if encoding == 'utf-8' then
    return math.min(character, #line)
  end
  local ok, col
  if M.has_011 then
    ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  else
    ok, col = pcall(vim.str_byteindex, line, character, encoding == 'utf-16')
  end
  if not ok then
    return #line
  end
  return math.min(col, #line)
end

--- The LSP character of byte column `col` in `line`.
---@param line string
---@param col integer
---@param encoding string 'utf-8'|'utf-16'|'utf-32'
---@return integer
function M.char_col(line, col, encoding)
  col = math.min(col, #line)
  if encoding == 'utf-8' then
    return col
  end
  if M.has_011 then
    return vim.str_utfindex(line, encoding, col, false)
  end
  local utf32, utf16 = vim.str_utfindex(line, col)
  return encoding == 'utf-16' and utf16 or utf32
end

--- A buffer line (0-based row), or '' past the end.
---@param bufnr integer
---@param row integer
---@return string
function M.line(bufnr, row)
  return vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
end

--- An LSP position for a (0-based row, byte col) of `bufnr`.
---@param bufnr integer
---@param row integer
---@param col integer
---@param encoding string
---@return lsp.Position
function M.position(bufnr, row, col, encoding)
  return { line = row, character = M.char_col(M.line(bufnr, row), col, encoding) }
end

--- The (0-based row, byte col) of an LSP position in `bufnr`.
---@param bufnr integer
---@param position lsp.Position
---@param encoding string
---@return integer, integer
function M.byte_position(bufnr, position, encoding)
  return position.line, M.byte_col(M.line(bufnr, position.line), position.character, encoding)
end

--- A scheduled `vim.notify` with the plugin's prefix (safe from callbacks).
---@param message string
---@param level? integer
function M.notify(message, level)
  vim.schedule(function()
    vim.notify('code-llama-ls: ' .. message, level or vim.log.levels.INFO)
  end)
end

return M
