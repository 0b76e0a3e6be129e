-- code_llama_ls.inline: completions through Neovim's own vim.lsp.inline_completion (0.12+).
--
-- Neovim requests, debounces, draws the ghost text (namespace
-- `nvim.lsp.inline_completion`, highlight `ComplHint`) and applies it; this
-- module only enables it in the buffers the server is attached to and
-- exposes accept/next/prev for the <Plug> maps. Enabling is per buffer, so
-- other inline-completion servers attached to the same buffer show too.

local M = {}

---@param bufnr integer
---@param on boolean
function M.set(bufnr, on)
  if vim.api.nvim_buf_is_valid(bufnr) then
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

--- Accept the shown completion; false when none is shown (safe in <expr> maps).
---@return boolean
function M.accept()
  return vim.lsp.inline_completion.get()
end

--- Show the next (count > 0) or previous candidate.
---@param count integer
function M.select(count)
  vim.lsp.inline_completion.select({ count = count })
end

--- Whether a completion is shown in `bufnr`.
---@param bufnr integer
---@return boolean
function M.visible(bufnr)
  local ns = vim.api.nvim_create_namespace('nvim.lsp.inline_completion')
  return #vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { limit = 1 }) > 0
end

return M
