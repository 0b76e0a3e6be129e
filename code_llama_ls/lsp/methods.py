"""The names of the server's own protocol: its requests, notifications and commands.

extensions/PROTOCOL.md describes their params and results; the editor
extensions and the benchmarks use the same strings.
"""

STATUS_NOTIFICATION = "codeLlama/status"
GET_STATUS_REQUEST = "codeLlama/getStatus"
MEMORY_REQUEST = "codeLlama/memory"
DOCUMENT_REQUEST = "codeLlama/document"
EXPLAIN_COMMAND = "codeLlama.explain"
SHOW_PROMPT_COMMAND = "codeLlama.showPrompt"
DID_SHOW_COMPLETION = "textDocument/didShowCompletion"
"""Copilot's: the client showed an inline completion item (params: {item})."""
DID_PARTIALLY_ACCEPT_COMPLETION = "textDocument/didPartiallyAcceptCompletion"
"""Copilot's: the user accepted part of an item (params: {item, acceptedLength})."""
ACCEPT_COMPLETION_COMMAND = "codeLlama.didAcceptCompletion"
"""The command on each item, which clients run when the user accepts it ([{id}])."""
DID_YANK_NOTIFICATION = "codeLlama/didYank"
"""The user yanked (Neovim) or copied (VS Code) text in the editor ({text, uri?}): the server
keeps the last few as context for completions."""
