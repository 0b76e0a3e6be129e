"""The model host: a process beside the language server that loads the model and generates,
and the server's side of it (an `Engine` that forwards to it).

Light on purpose: `launch` reads `HOST_ENVIRONMENT` before anything else is imported.
"""

HOST_ENVIRONMENT = "CODE_LLAMA_LS_MODEL_HOST"
"""The environment variable that hands the server its model host: "PID:SOCKET_FD"."""
