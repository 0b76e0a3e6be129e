-- code-llama-ls: user commands and <Plug> maps. Modules load on first use;
-- nothing starts until require('code_llama_ls').setup() runs. No keys are
-- mapped for you: see :help code_llama_ls-mappings for suggested ones.

if vim.g.loaded_code_llama_ls == 1 then
  return
end
vim.g.loaded_code_llama_ls = 1

local function plugin()
  return require('code_llama_ls')
end

local command = vim.api.nvim_create_user_command

command('CodeLlamaExplain', function(opts)
  require('code_llama_ls.explain').command(opts)
end, { range = true, desc = 'Explain the lines of the range (or the definition at the cursor)' })
command('CodeLlamaPrompt', function()
  require('code_llama_ls.prompt').show()
end, { desc = 'Show the prompt the model would see at the cursor' })
command('CodeLlamaToggle', function()
  plugin().toggle()
end, { desc = 'Switch Code Llama inline completions on or off' })
command('CodeLlamaRestart', function()
  plugin().restart()
end, { desc = 'Restart the code-llama-ls server' })
command('CodeLlamaLog', function()
  require('code_llama_ls.log').open()
end, { desc = 'Show the code-llama-ls server log' })
command('CodeLlamaStatus', function()
  plugin().print_status()
end, { desc = 'Show the model, device and state of the code-llama-ls server' })

local map = vim.keymap.set

map('i', '<Plug>(code-llama-accept)', function()
  plugin().accept()
end, { desc = 'Accept the Code Llama completion' })
map('i', '<Plug>(code-llama-accept-word)', function()
  plugin().accept('word')
end, { desc = 'Accept the next word of the Code Llama completion' })
map('i', '<Plug>(code-llama-accept-line)', function()
  plugin().accept('line')
end, { desc = 'Accept the next line of the Code Llama completion' })
map('i', '<Plug>(code-llama-next)', function()
  plugin().next()
end, { desc = 'Next Code Llama completion' })
map('i', '<Plug>(code-llama-prev)', function()
  plugin().prev()
end, { desc = 'Previous Code Llama completion' })
map('x', '<Plug>(code-llama-explain)', function()
  require('code_llama_ls.explain').visual()
end, { desc = 'Explain the selection with Code Llama' })
map('n', '<Plug>(code-llama-explain)', function()
  require('code_llama_ls.explain').command({ range = 0 })
end, { desc = 'Explain the definition at the cursor with Code Llama' })
map({ 'n', 'i' }, '<Plug>(code-llama-prompt)', function()
  require('code_llama_ls.prompt').show()
end, { desc = 'Show the Code Llama prompt at the cursor' })
