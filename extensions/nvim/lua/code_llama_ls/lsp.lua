-- code_llama_ls.lsp: the LSP client config and how buffers get attached to the server.
--
-- Neovim 0.11+: `vim.lsp.config('code_llama_ls', …)` + `vim.lsp.enable()`, so
-- the config also shows in :checkhealth vim.lsp and can be tweaked like any
-- other. Neovim 0.10: a FileType autocmd calls `vim.lsp.start()` itself.
-- One server serves every filetype and project: the model is loaded once.

local config = require('code_llama_ls.config')
local log = require('code_llama_ls.log')
local status = require('code_llama_ls.status')
local util = require('code_llama_ls.util')

local M = {}

local api = vim.api
local has_lsp_config = vim.lsp.config ~= nil and vim.lsp.enable ~= nil

--- Whether a buffer should get the server: a loaded, named file buffer of a wanted filetype.
---@param bufnr integer
---@return boolean
function M.wants(bufnr)
  if not api.nvim_buf_is_loaded(bufnr) or vim.bo[bufnr].buftype ~= '' then
    return false
  end
  if api.nvim_buf_get_name(bufnr) == '' then
    return false
  end
  local filetypes = config.get().filetypes
  return filetypes == nil or vim.tbl_contains(filetypes, vim.bo[bufnr].filetype)
end

--- The project root of a buffer: the nearest root marker, else the file's folder.
---@param bufnr integer
---@return string
function M.root_dir(bufnr)
  local name = api.nvim_buf_get_name(bufnr)
  local markers = config.get().root_markers or {}
  local root = #markers > 0 and vim.fs.root(bufnr, markers) or nil
  return root or vim.fs.dirname(name)
end

--- Tell the server about a buffer's project when it lies outside the
--- client's workspace folders. The one client is reused for every project,
--- and Neovim sends only the first root; the server indexes each workspace
--- folder for completion context. Only a root found by a root marker is
--- added, never the folder of a loose file.
---@param bufnr integer
---@param client vim.lsp.Client
function M.add_workspace_folder(bufnr, client)
  local markers = config.get().root_markers or {}
  local root = #markers > 0 and vim.fs.root(bufnr, markers) or nil
  if not root then
    return
  end
  for _, folder in ipairs(client.workspace_folders or {}) do
    local dir = vim.uri_to_fname(folder.uri):gsub('/$', '')
    if root == dir or vim.startswith(root, dir .. '/') then
      return
    end
  end
  local folder = { uri = vim.uri_from_fname(root), name = root }
  util.send_notification(client, 'workspace/didChangeWorkspaceFolders', {
    event = { added = { folder }, removed = {} },
  })
  client.workspace_folders = client.workspace_folders or {}
  table.insert(client.workspace_folders, folder)
end

--- The client config, without root_dir (each Neovim version sets that its own way).
---@return table
function M.client_config()
  local opts = config.get()
  local settings = config.server_settings()
  return {
    name = config.name,
    cmd = opts.cmd,
    filetypes = opts.filetypes,
    init_options = settings,
    settings = settings,
    handlers = {
      ['codeLlama/status'] = status.on_status,
      ['window/logMessage'] = log.on_log_message,
      ['window/showMessage'] = log.on_show_message,
    },
    -- A single server for every root: reuse whichever code-llama-ls client runs.
    reuse_client = function(client, conf)
      return client.name == conf.name
    end,
    on_exit = function(_, _, client_id)
      status.forget(client_id)
    end,
  }
end

--- Attach `bufnr` to the server (starting it if needed) when it wants one.
---@param bufnr integer
function M.start(bufnr)
  if not M.wants(bufnr) then
    return
  end
  local cfg
  if has_lsp_config then
    cfg = vim.deepcopy(vim.lsp.config[config.name])
  else
    cfg = M.client_config()
  end
  cfg.root_dir = M.root_dir(bufnr)
  vim.lsp.start(cfg, { bufnr = bufnr, reuse_client = cfg.reuse_client })
end

--- Attach every loaded buffer that wants the server.
function M.start_all()
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    M.start(bufnr)
  end
end

--- Register the config and start attaching buffers (called by setup()).
function M.enable()
  if has_lsp_config then
    local cfg = M.client_config()
    cfg.root_dir = function(bufnr, on_dir)
      if M.wants(bufnr) then
        on_dir(M.root_dir(bufnr))
      end
    end
    vim.lsp.config(config.name, cfg)
    vim.lsp.enable(config.name)
  else
    local group = api.nvim_create_augroup('code_llama_ls.lsp', { clear = true })
    api.nvim_create_autocmd('FileType', {
      group = group,
      callback = function(args)
        M.start(args.buf)
      end,
    })
    if vim.v.vim_did_enter == 1 then
      M.start_all()
    end
  end
end

--- Stop every code-llama-ls client, then attach the buffers again (:CodeLlamaRestart).
---@param on_done? fun()
function M.restart(on_done)
  local clients = util.clients()
  for _, client in ipairs(clients) do
    util.stop(client)
  end
  local waited = 0
  local timer = assert((vim.uv or vim.loop).new_timer())
  timer:start(
    50,
    50,
    vim.schedule_wrap(function()
      waited = waited + 50
      local running = util.clients()
      if #running > 0 and waited < 5000 then
        return
      end
      for _, client in ipairs(running) do
        util.stop(client, true)
      end
      timer:stop()
      timer:close()
      M.start_all()
      if on_done then
        on_done()
      end
    end)
  )
end

return M
