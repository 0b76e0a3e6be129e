-- code_llama_ls.health: `:checkhealth code_llama_ls`.
--
-- Reports the Neovim version and which completion path runs (native
-- vim.lsp.inline_completion or this plugin's fallback), the server command
-- and whether it can be run, the configured settings, and for each running
-- server the model, device and state it reports (`codeLlama/getStatus`).

local config = require('code_llama_ls.config')
local util = require('code_llama_ls.util')

local M = {}

local health = vim.health

---@param value any
---@return string
local function show(value)
  if type(value) == 'string' then
    return value
  end
  return vim.inspect(value, { newline = ' ', indent = '' })
end

local function check_neovim()
  health.start('code-llama-ls: Neovim')
  local version = tostring(vim.version())
  if vim.fn.has('nvim-0.10') == 1 then
    health.ok('Neovim ' .. version)
  else
    health.error(
      'Neovim ' .. version .. ' is too old',
      { 'code-llama-ls needs Neovim 0.10 or newer' }
    )
  end
  if config.use_native_completion() then
    health.ok('inline completions: native vim.lsp.inline_completion (Neovim 0.12+)')
  elseif vim.lsp.inline_completion ~= nil then
    health.ok('inline completions: code-llama-ls ghost text (completions.provider = "fallback")')
  else
    health.ok(
      'inline completions: code-llama-ls ghost text (this Neovim has no vim.lsp.inline_completion)'
    )
  end
end

local function check_setup()
  health.start('code-llama-ls: setup')
  if not config.is_setup() then
    health.warn('setup() has not been called', {
      'add require("code_llama_ls").setup({}) to your config, or `opts = {}` to the lazy.nvim spec',
    })
  end
  local opts = config.get()
  if type(opts.cmd) == 'function' then
    health.info('server command: a function (not checked)')
  else
    local cmd = opts.cmd --[[@as string[] ]]
    local line = table.concat(cmd, ' ')
    local path = cmd[1] and vim.fn.exepath(cmd[1]) or ''
    if path ~= '' then
      health.ok(('server command: `%s` (%s)'):format(line, path))
    else
      health.error(
        ('server command: `%s`: `%s` is not executable'):format(line, tostring(cmd[1])),
        {
          'pip install code-llama-ls (into a virtual environment), then',
          'setup({ cmd = { "/path/to/venv/bin/code-llama-ls", "serve" } }) or put it on $PATH',
        }
      )
    end
  end
  local settings = opts.settings or {}
  if next(settings) == nil then
    health.info('settings: none (the server uses its offline default model)')
  else
    for key, value in vim.spairs(settings) do
      -- A bearer token is a secret: say that it is set, never what it is.
      local shown = key == 'remoteToken' and '(set)' or show(value)
      health.info(('setting %s = %s'):format(key, shown))
    end
  end
  local state = require('code_llama_ls').enabled() and 'on' or 'off'
  health.info('inline completions are ' .. state .. ' (:CodeLlamaToggle)')
end

local function check_servers()
  health.start('code-llama-ls: server')
  local status = require('code_llama_ls.status')
  local clients = util.clients()
  if #clients == 0 then
    health.info('no code-llama-ls client is running (open a file to start one)')
    return
  end
  for _, client in ipairs(clients) do
    local info = client.server_info or {}
    local buffers = vim.tbl_count(client.attached_buffers or {})
    health.info(
      ('client %d: %s %s, root %s, %s, %d buffer(s)'):format(
        client.id,
        info.name or 'server',
        info.version or '',
        client.root_dir or client.config.root_dir or '?',
        client.offset_encoding or '?',
        buffers
      )
    )
    local current, err = status.request(client, 2000)
    if not current then
      local last = status.get(client.id)
      health.warn(('codeLlama/getStatus failed: %s'):format(err), {
        'update code-llama-ls; last known state: ' .. status.describe(last),
      })
    elseif current.state == 'error' then
      health.error(
        ('model %s could not be loaded: %s'):format(current.model or '?', current.message or ''),
        { 'check the `model` and `device` settings, then :CodeLlamaRestart' }
      )
    else
      health.ok(
        ('model: %s, device: %s, state: %s'):format(
          current.model or '?',
          current.device or '?',
          current.state
        )
      )
      if current.prompt then
        health.info('prompts: ' .. current.prompt)
      end
      if current.lastCompletionMs then
        health.info(('last completion took %.0f ms on the server'):format(current.lastCompletionMs))
      end
      local accepted = status.acceptance(current)
      if accepted then
        health.info('suggestions ' .. accepted .. ', counted on this machine only')
      end
    end
  end
end

function M.check()
  check_neovim()
  check_setup()
  check_servers()
end

return M
