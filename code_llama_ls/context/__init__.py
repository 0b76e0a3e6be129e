"""Repository-level context: the workspace index and the snippets it puts before the prefix.

`files` finds the files, `outline` reads what each defines and imports,
`imports` resolves imports to files (the file index and config files it reads
are `import_workspace`, its per-language rules `import_rules`), `index` keeps
it all current, `sources` propose snippets, `assemble` fits them in the token
budget, and `builder` runs them for one cursor under time budgets.
"""
