-- code_llama_ls.partial: the start of a suggestion that "accept word" and "accept line" insert.
--
-- A word is the blanks before it and a run of word characters (or else of
-- other non-blank characters), as VS Code's Accept Word takes it. A line is
-- the suggestion's first line without its line break; when the suggestion
-- starts on a new line, that break and the line after it. The rest stays
-- suggested: the server answers the next request from the suggestion being
-- typed through, without running the model.

local M = {}

---@param text string The whole suggestion.
---@param part 'word'|'line'
---@return string
function M.prefix(text, part)
  if part == 'line' then
    local first = text:match('^[^\n]*')
    if first ~= '' or #text == 0 then
      return first
    end
    return '\n' .. text:match('^\n([^\n]*)')
  end
  return text:match('^%s*[%w_]+') or text:match('^%s*[^%w_%s]+') or text
end

return M
