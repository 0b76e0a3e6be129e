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
