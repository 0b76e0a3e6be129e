"""`python -m code_llama_ls` runs the `code-llama-ls` command."""

import sys

from code_llama_ls.launch import main

sys.exit(main())
