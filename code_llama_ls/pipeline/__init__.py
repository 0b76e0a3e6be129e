"""The stages of one completion or explanation, in order: budget, local window,
prompt, generation, post-processing. Plain data in and out; no LSP."""
