"""Repository-level context: the workspace index and the snippets it puts before the prefix.

`workspace_files` finds the files, `outline` reads what each defines and
imports, `imports` resolves imports to files, `index` keeps it all current,
`sources` propose snippets, `assemble` fits them in the token budget, and
`builder` runs them for one cursor under time budgets.
"""
