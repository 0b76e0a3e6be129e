"""`python -m code_llama_ls` runs the `code-llama-ls` command."""

import sys

from code_llama_ls.cli import main

sys.exit(main())
